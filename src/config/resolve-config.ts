/**
 * Defaults resolution: a schema-valid, checked input becomes the `Config` the program runs with
 * (every default filled in, durations in milliseconds, file paths absolute), then frozen.
 */
import { isIP } from 'node:net';
import { dirname, resolve as resolvePath } from 'node:path';
import { usableCpuReport } from '../platform/usable-cpus.js';
import { DEFAULTS } from './defaults.js';
import { parseDuration } from './duration.js';
import { resolveBgp } from './bgp.js';
import { resolveHa } from './ha.js';
import type { ConfigInput } from './schema.js';
import type {
  AdminConfig,
  Backend,
  Config,
  Ikev2Service,
  Monitor,
  Pool,
  SstpService,
} from './types.js';

/** Relative file paths in a configuration are relative to the configuration file. */
export function baseDirOf(source: string): string {
  return source.startsWith('<') ? process.cwd() : dirname(resolvePath(source));
}

function resolveAdmin(a: NonNullable<ConfigInput['admin']>, baseDir: string): AdminConfig {
  const D = DEFAULTS.admin;
  return {
    listen: a.listen ?? D.listen,
    port: a.port ?? D.port,
    tokenFile: resolvePath(baseDir, a.tokenFile ?? D.tokenFile),
    ...(a.readOnlyTokenFile !== undefined
      ? { readOnlyTokenFile: resolvePath(baseDir, a.readOnlyTokenFile) }
      : {}),
    ...(a.socket !== undefined ? { socket: resolvePath(baseDir, a.socket) } : {}),
    ...(a.tls
      ? { tls: { cert: resolvePath(baseDir, a.tls.cert), key: resolvePath(baseDir, a.tls.key) } }
      : {}),
    allowedHosts: (a.allowedHosts ?? []).map((h) => h.toLowerCase()),
    metrics: a.metrics ?? D.metrics,
    healthEndpoint: a.healthEndpoint ?? D.healthEndpoint,
    maxConnections: a.maxConnections ?? D.maxConnections,
    sessionTimeout: parseDuration(a.sessionTimeout ?? D.sessionTimeout / 1000),
  };
}

/** The configuration `input` (from `source`) with every default resolved. */
export function resolve(input: ConfigInput, source: string): Config {
  const monitors: Record<string, Monitor> = {};
  for (const [name, m] of Object.entries(input.monitors ?? {})) {
    monitors[name] = {
      name,
      type: m.type,
      interval: parseDuration(m.interval ?? DEFAULTS.monitor.interval / 1000),
      timeout: parseDuration(m.timeout ?? DEFAULTS.monitor.timeout / 1000),
      rise: m.rise ?? DEFAULTS.monitor.rise,
      fall: m.fall ?? DEFAULTS.monitor.fall,
      jitter: m.jitter ?? DEFAULTS.monitor.jitter,
      verifyCertificate: m.verifyCertificate ?? DEFAULTS.monitor.verifyCertificate,
      expectStatus: m.expectStatus ?? DEFAULTS.monitor.expectStatus,
      ...(m.port !== undefined ? { port: m.port } : {}),
      ...(m.sni !== undefined ? { sni: m.sni } : {}),
      ...(m.ca !== undefined ? { ca: m.ca } : {}),
    };
  }
  const pools: Record<string, Pool> = {};
  for (const [name, p] of Object.entries(input.pools)) {
    pools[name] = {
      name,
      backends: p.backends.map(
        (b): Backend => ({
          name: b.name,
          address: b.address,
          family: isIP(b.address) === 6 ? 6 : 4,
          weight: b.weight ?? DEFAULTS.backend.weight,
          enabled: b.enabled ?? DEFAULTS.backend.enabled,
          maxConnections: b.maxConnections ?? DEFAULTS.backend.maxConnections,
        }),
      ),
      slowStart: parseDuration(p.slowStart ?? DEFAULTS.slowStart),
    };
  }
  const D = DEFAULTS.ikev2;
  const ikev2 = (input.services.ikev2 ?? []).map(
    (s): Ikev2Service => ({
      name: s.name,
      virtualIp: s.virtualIp,
      family: isIP(s.virtualIp) === 6 ? 6 : 4,
      ikePort: s.ikePort ?? D.ikePort,
      natTPort: s.natTPort ?? D.natTPort,
      backendIkePort: s.backendIkePort ?? D.ikePort,
      backendNatTPort: s.backendNatTPort ?? D.natTPort,
      pool: s.pool,
      dataplane: s.dataplane ?? D.dataplane,
      nat: s.nat ?? D.nat,
      ...(s.snat
        ? {
            snat: {
              addresses: [...s.snat.addresses],
              maxSasPerAddress: s.snat.maxSasPerAddress ?? D.maxSasPerAddress,
            },
          }
        : {}),
      affinity: s.affinity ?? D.affinity,
      method: s.method ?? D.method,
      flowTimeout: parseDuration(s.flowTimeout ?? D.flowTimeout / 1000),
      persistenceTimeout: parseDuration(s.persistenceTimeout ?? D.persistenceTimeout / 1000),
      maxFlows: s.maxFlows ?? D.maxFlows,
      maxNewFlowsPerSecond: s.maxNewFlowsPerSecond ?? D.maxNewFlowsPerSecond,
      maxNewFlowsPerSecondPerSource:
        s.maxNewFlowsPerSecondPerSource ??
        Math.max(
          1,
          Math.ceil(
            (s.maxNewFlowsPerSecond ?? D.maxNewFlowsPerSecond) *
              D.maxNewFlowsPerSecondPerSourceShare,
          ),
        ),
      kernelShed: s.kernelShed ?? D.kernelShed,
      kernelShedInterfaces: s.kernelShedInterfaces ?? [],
      table: s.table ?? D.table,
      hashSeed: s.hashSeed ?? D.hashSeed,
      slowStart:
        s.slowStart !== undefined
          ? parseDuration(s.slowStart)
          : (pools[s.pool]?.slowStart ?? DEFAULTS.slowStart),
      ...(s.monitor !== undefined ? { monitor: s.monitor } : {}),
    }),
  );
  const S = DEFAULTS.sstp;
  const sstp = (input.services.sstp ?? []).map((s): SstpService => {
    const mode = s.mode ?? S.mode;
    const dataplane = s.dataplane ?? S.dataplane;
    const isKernel = dataplane === 'kernel';
    return {
      name: s.name,
      virtualIp: s.virtualIp,
      family: isIP(s.virtualIp) === 6 ? 6 : 4,
      port: s.port ?? S.port,
      pool: s.pool,
      mode,
      dataplane,
      table: s.table ?? S.table,
      hashSeed: s.hashSeed ?? S.hashSeed,
      method: s.method ?? (isKernel ? S.kernelMethod : S.method),
      persistence:
        s.persistence ??
        (isKernel ? S.kernelPersistence : mode === 'passthrough' ? S.persistence : 'source-ip'),
      persistenceTimeout: parseDuration(s.persistenceTimeout ?? S.persistenceTimeout / 1000),
      ...(s.tls
        ? {
            tls: {
              cert: resolvePath(baseDirOf(source), s.tls.cert),
              key: resolvePath(baseDirOf(source), s.tls.key),
            },
          }
        : {}),
      backendPort: s.backendPort ?? (mode === 'offload' ? S.backendPortOffload : S.backendPortTls),
      allowCertificateMismatch: s.allowCertificateMismatch ?? S.allowCertificateMismatch,
      maxConnections: s.maxConnections ?? S.maxConnections,
      maxConnectionsPerSource: s.maxConnectionsPerSource ?? S.maxConnectionsPerSource,
      maxNewConnectionsPerSecondPerSource:
        s.maxNewConnectionsPerSecondPerSource ?? S.maxNewConnectionsPerSecondPerSource,
      idleTimeout: parseDuration(s.idleTimeout ?? S.idleTimeout / 1000),
      handshakeTimeout: parseDuration(s.handshakeTimeout ?? S.handshakeTimeout / 1000),
      connectTimeout: parseDuration(s.connectTimeout ?? S.connectTimeout / 1000),
      drainTimeout: parseDuration(s.drainTimeout ?? S.drainTimeout / 1000),
      slowStart:
        s.slowStart !== undefined
          ? parseDuration(s.slowStart)
          : (pools[s.pool]?.slowStart ?? DEFAULTS.slowStart),
      ...(s.monitor !== undefined ? { monitor: s.monitor } : {}),
    };
  });
  return {
    source,
    admin: resolveAdmin(input.admin ?? {}, baseDirOf(source)),
    log: { level: input.log?.level ?? DEFAULTS.logLevel },
    health: { allDown: input.health?.allDown ?? DEFAULTS.allDown },
    // One process unless asked: least connections across workers is eventually consistent (two
    // clients arriving at once in two workers can both pick the same least-loaded server).
    ...resolveWorkers(input.workers),
    monitors,
    pools,
    services: { ikev2, sstp },
    ...(input.ha
      ? {
          ha: resolveHa(
            input.ha,
            [...ikev2, ...sstp].map((s) => s.virtualIp),
          ),
        }
      : {}),
    ...(input.bgp
      ? {
          bgp: resolveBgp(
            input.bgp,
            [...ikev2, ...sstp],
            baseDirOf(source),
            input.admin?.readOnlyTokenFile,
          ),
        }
      : {}),
  };
}

export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}

/** `workers`: `auto` is one per usable CPU (at most 64), with the reason kept for the start log. */
function resolveWorkers(
  workers: number | 'auto' | undefined,
): Pick<Config, 'workers' | 'workersAuto'> {
  if (workers !== 'auto') return { workers: workers ?? 1 };
  const u = usableCpuReport();
  const n = Math.min(u.cpus, 64);
  return { workers: n, workersAuto: `${n}${u.cpus > 64 ? ' (the most)' : ''}: ${u.why}` };
}
