/**
 * The `/api/v1/status` document: what an administrator needs to know at a glance, per service:
 * the data plane in use, each backend's state with the reason and time of its last change,
 * its counters, and every warning.
 */
import type { Balancer } from '../balancer/balancer.js';
import { MaglevBalancer } from '../balancer/maglev/maglev.js';
import type { Controller } from '../control/controller.js';
import type { ServiceSnapshot } from '../control/snapshot.js';
import type { DataPlane } from '../control/dataplane-interface.js';

export interface StatusDocument {
  readonly version: string;
  readonly startedAt: string;
  readonly config: string;
  readonly snapshotVersion: number;
  readonly services: readonly unknown[];
  readonly warnings: readonly string[];
  /** This node's place in an active/standby pair (`ha:` configured), else absent. */
  readonly ha?: unknown;
  /** This node's announcements and BGP peers behind ECMP (`bgp:` configured), else absent. */
  readonly bgp?: unknown;
}

export function buildStatus(
  controller: Controller,
  dataPlanes: ReadonlyMap<string, DataPlane>,
  warnings: readonly string[],
  startedAt: Date,
  appliedVersions: ReadonlyMap<string, number> = new Map(),
  lastProbes: ReadonlyMap<string, unknown> = new Map(),
  ha?: unknown,
  bgp?: unknown,
): StatusDocument {
  const snap = controller.snapshot();
  const services = snap.services.map((s) => {
    const dp = dataPlanes.get(s.name)?.status();
    const svc = s.service;
    const common = {
      name: s.name,
      kind: s.kind,
      virtualIp: svc.virtualIp,
      pool: svc.pool,
      method: svc.method,
      monitor: svc.monitor ?? null,
      dataplane: dp?.dataplane ?? 'not running',
      listeners: dp?.listeners ?? [],
      allDownFallback: s.isAllDownFallback,
      // True once the data plane has applied the current snapshot (map rewritten, flows of
      // down backends removed): what an operator or a test waits for after a change.
      dataplaneInSync: appliedVersions.get(s.name) === snap.version,
      appliedSnapshotVersion: appliedVersions.get(s.name) ?? null,
      warnings: dp?.warnings ?? [],
    };
    const specific =
      s.kind === 'ikev2'
        ? {
            ports: [s.service.ikePort, s.service.natTPort],
            nat: s.service.nat,
            affinity: s.service.affinity,
          }
        : { port: s.service.port, mode: s.service.mode, persistence: s.service.persistence };
    return {
      ...common,
      ...specific,
      backends: s.backends.map((b) => ({
        ...b,
        // Fraction of new clients the backend receives: its share of the Maglev table, or of
        // the weights for the other methods (0 when it takes no new client).
        share: sharesOf(s).get(b.name) ?? 0,
        counters: dp?.backends[b.name] ?? {},
        lastProbe: lastProbes.get(`${s.name}/${b.name}`) ?? null,
      })),
    };
  });
  const all = [...warnings, ...services.flatMap((s) => s.warnings.map((w) => `${s.name}: ${w}`))];
  return {
    version: process.env.npm_package_version ?? '0.1.0',
    startedAt: startedAt.toISOString(),
    config: controller.config.source,
    snapshotVersion: snap.version,
    services,
    warnings: all,
    ...(ha !== undefined ? { ha } : {}),
    ...(bgp !== undefined ? { bgp } : {}),
  };
}

const shareCache = new WeakMap<Balancer, Map<string, number>>();

/** Per candidate, its share of new clients (computed once per balancer: snapshots are immutable). */
function sharesOf(s: ServiceSnapshot): Map<string, number> {
  const cached = shareCache.get(s.balancer);
  if (cached) return cached;
  const out = new Map<string, number>();
  if (s.balancer instanceof MaglevBalancer) {
    const { backends, slots } = s.balancer.table;
    const counts = new Array<number>(backends.length).fill(0);
    for (const i of slots) if (i >= 0) counts[i]!++;
    backends.forEach((b, i) => {
      out.set(b.name, counts[i]! / slots.length);
    });
  } else {
    const total = s.candidates.reduce((n, c) => n + c.weight, 0);
    for (const c of s.candidates) out.set(c.name, total > 0 ? c.weight / total : 0);
  }
  shareCache.set(s.balancer, out);
  return out;
}
