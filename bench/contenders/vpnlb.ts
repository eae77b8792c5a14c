/**
 * vpnlb itself as a contender: `vpnlb run --config FILE` inside the balancer namespace, pinned
 * to the balancer core (the Node process; the kernel data plane's forwarding runs in softirq on
 * the same core through RPS, see ../lib/topology.ts).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Namespace } from '../../lab/netns.js';
import { REPO_ROOT, vpnlbArgv } from '../../lab/vpnlb-process.js';
import { startDaemon, waitForListen, type Daemon } from '../lib/proc.js';
import { keepXdpOnBalancerCore } from '../lib/topology.js';
import { sleep } from '../../src/util/wait.js';

export type VpnlbCase =
  | {
      kind: 'ikev2';
      dataplane: 'kernel' | 'userspace';
      vip: string;
      backends: readonly string[];
      table: string;
      maxFlows?: number;
      /** Userspace relay: new flows set up per second before it sheds (default: vpnlb's). */
      maxNewFlowsPerSecond?: number;
      /** Extra YAML lines inside the service (indented by the caller), e.g. `monitor: ike`. */
      extra?: string;
      /**
       * Userspace relay: shed floods in XDP on this interface of the balancer namespace
       * (`kernelShed: xdp`); its NAPI is then kept on the balancer's core (keepXdpOnBalancerCore).
       */
      xdpShedOn?: string;
      /** Ports of the virtual IP and of the servers (default 500/4500 for both). */
      ports?: { ike: number; natT: number; backendIke: number; backendNatT: number };
      /** Extra top-level YAML (e.g. a `monitors:` block). */
      top?: string;
      hashSeed?: number;
    }
  | {
      kind: 'sstp';
      mode: 'passthrough' | 'offload';
      /** `kernel`: passthrough by nftables DNAT (persistence none, maglev); default the userspace proxy. */
      dataplane?: 'kernel' | 'userspace';
      vip: string;
      port: number;
      backends: readonly string[];
      backendPort: number;
      cert?: string;
      key?: string;
      /** The `workers` setting (default: vpnlb's, one process). */
      workers?: number;
    };

/** The data-plane source file a case needs; the contender is skipped while it has not landed. */
export function vpnlbSourceFor(c: VpnlbCase): string {
  if (c.kind === 'sstp')
    return c.dataplane === 'kernel'
      ? 'src/dataplane/kernel/kernel-sstp-dataplane.ts'
      : 'src/dataplane/sstp/sstp-proxy.ts';
  return c.dataplane === 'kernel'
    ? 'src/dataplane/kernel/kernel-dataplane.ts'
    : 'src/dataplane/relay/udp-relay.ts';
}

/** Whether the bench itself runs from sources (tsx): vpnlb then runs from sources too (lab/vpnlb-process.ts). */
const FROM_SOURCE = import.meta.url.endsWith('.ts');

/** Whether vpnlb can run this case in this tree (compiled file present), with the reason if not. */
export function vpnlbAvailable(c: VpnlbCase): { ok: true } | { ok: false; reason: string } {
  const src = vpnlbSourceFor(c);
  const compiled = join(REPO_ROOT, 'dist', src.replace(/\.ts$/, '.js'));
  if (!existsSync(join(REPO_ROOT, src)))
    return { ok: false, reason: `${src} is not in the tree yet` };
  if (FROM_SOURCE) return { ok: true };
  if (!existsSync(compiled)) return { ok: false, reason: `${src} did not compile to dist/` };
  if (!existsSync(join(REPO_ROOT, 'dist/src/dataplane/registry.js')))
    return { ok: false, reason: 'dist/src/dataplane/registry.js missing' };
  return { ok: true };
}

/** The YAML configuration for a case (pure). */
export function vpnlbConfig(c: VpnlbCase): string {
  const backends = c.backends
    .map((b, i) => `      - { name: s${i + 1}, address: ${b} }`)
    .join('\n');
  const head = `admin: { listen: 127.0.0.1, port: 0, tokenFile: admin.token }\nlog: { level: warn }\n${c.kind === 'ikev2' && c.top ? `${c.top.trimEnd()}\n` : ''}${c.kind === 'sstp' && c.workers ? `workers: ${c.workers}\n` : ''}pools:\n  farm:\n    backends:\n${backends}\n`;
  if (c.kind === 'ikev2') {
    const p = c.ports;
    const lines = [
      ...(p
        ? [
            `ikePort: ${p.ike}`,
            `natTPort: ${p.natT}`,
            `backendIkePort: ${p.backendIke}`,
            `backendNatTPort: ${p.backendNatT}`,
          ]
        : []),
      // The load generator is one source address: its share of the budget is the whole budget.
      ...(c.maxNewFlowsPerSecond
        ? [
            `maxNewFlowsPerSecond: ${c.maxNewFlowsPerSecond}`,
            `maxNewFlowsPerSecondPerSource: ${c.maxNewFlowsPerSecond}`,
          ]
        : []),
      ...(c.hashSeed !== undefined ? [`hashSeed: ${c.hashSeed}`] : []),
      ...(c.xdpShedOn ? ['kernelShed: xdp', `kernelShedInterfaces: [${c.xdpShedOn}]`] : []),
      ...(c.extra ? [c.extra] : []),
    ]
      .map((l) => `      ${l}\n`)
      .join('');
    return `${head}services:
  ikev2:
    - name: ike
      virtualIp: ${c.vip}
      pool: farm
      dataplane: ${c.dataplane}
      nat: ${c.dataplane === 'kernel' ? 'transparent' : 'full'}
      affinity: ike-spi
      method: maglev
      table: ${c.table}
      maxFlows: ${c.maxFlows ?? 200000}
${lines}`;
  }
  // One load generator address opens every connection: persistence none spreads them (the
  // kernel places by address and port), and the proxy's per-source limits would measure themselves.
  const plane =
    c.dataplane === 'kernel'
      ? ['dataplane: kernel']
      : [
          'method: least-connections',
          'maxConnectionsPerSource: 0',
          'maxNewConnectionsPerSecondPerSource: 0',
          ...(c.cert && c.key ? [`tls: { cert: ${c.cert}, key: ${c.key} }`] : []),
        ];
  return `${head}services:
  sstp:
    - name: sstp
      virtualIp: ${c.vip}
      port: ${c.port}
      pool: farm
      mode: ${c.mode}
      persistence: none
      backendPort: ${c.backendPort}
${plane.map((l) => `      ${l}\n`).join('')}`;
}

/** Starts vpnlb for a case and waits until its data plane is up. */
export async function startVpnlb(
  ns: Namespace,
  cpu: number | string,
  c: VpnlbCase,
  dir: string,
  extraNodeArgs: readonly string[] = [],
): Promise<Daemon> {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'vpnlb.yaml');
  writeFileSync(file, vpnlbConfig(c));
  const [node, ...args] = vpnlbArgv(['run', '--config', file]);
  const d = startDaemon(ns, cpu, node!, [...extraNodeArgs, ...args], `vpnlb ${c.kind}`, {
    NODE_ENV: 'production',
  });
  await d.waitFor((out) => out.includes('vpnlb running'), 20_000);
  if (c.kind === 'sstp' && c.dataplane !== 'kernel')
    await waitForListen(ns, 'tcp', c.port, 5_000, d);
  else if (c.kind === 'ikev2' && c.dataplane === 'userspace')
    await waitForListen(ns, 'udp', c.ports?.natT ?? 4500, 5_000, d);
  else await sleep(300); // the ruleset is applied before "vpnlb running" is printed
  if (c.kind === 'ikev2' && c.xdpShedOn) {
    try {
      // On the first core of a list (the relay's own process runs there).
      await keepXdpOnBalancerCore(ns, c.xdpShedOn, Number(String(cpu).split(/[-,]/)[0]));
    } catch (err) {
      await d.stop();
      throw err;
    }
  }
  return d;
}
