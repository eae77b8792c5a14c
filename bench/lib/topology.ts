/**
 * The benchmark topology: three namespaces joined by routed veth pairs (lab/netns.ts):
 *
 *   snd (generators) ── 198.18.1.0/24 ── lb (contender) ── 198.18.2.0/24 ── srv (sinks / servers)
 *
 * - VIP 198.19.0.1 lives on lb's loopback (proxies bind it; the kernel plane DNATs it in
 *   prerouting). Servers are 198.18.2.2–.5 in srv (one namespace, four addresses).
 * - UDP generator flows use raw source addresses from 198.18.16.0/20; lb routes them back to snd,
 *   where forwarding is off so replies are dropped instead of looping.
 * - CPU placement (2 vCPUs): the contender runs on CPU 0 (taskset), the generators and sinks on
 *   CPU 1. veth has no IRQ: a packet sent into a veth is received by the peer in the *sender's*
 *   softirq context (netif_rx → backlog on the current CPU). Receive Packet Steering on the
 *   receiving end moves that work: rps_cpus on lb's two veths = CPU 0, so every forwarding /
 *   NAT / socket-delivery cost of the balancer namespace lands on CPU 0; rps_cpus on snd's and
 *   srv's veths = CPU 1, so sink-side delivery lands on the generator core. The balancer's core
 *   busy fraction (from /proc/stat) therefore measures what forwarding costs.
 * - XDP on lb's veth (the relay's `kernelShed: xdp`) changes that: a veth with an XDP program
 *   receives through NAPI, polled on the *sender's* core, so the program's work and the receive
 *   path up to the RPS hand-off would be charged to the generator. `keepXdpOnBalancerCore`
 *   makes that NAPI a kernel thread pinned to the balancer's core, as a NIC's interrupt and
 *   NAPI would run on the balancer host's own cores, and moderates its wake-ups as a NIC
 *   moderates its interrupts (XDP_NAPI_MODERATION).
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Topology, type Namespace } from '../../lab/netns.js';
import { startDaemon, type Daemon } from './proc.js';

export const VIP = '198.19.0.1';
export const SND_ADDR = '198.18.1.2';
export const LB_SND_ADDR = '198.18.1.1';
export const LB_SRV_ADDR = '198.18.2.1';
export const SERVER_ADDRS = ['198.18.2.2', '198.18.2.3', '198.18.2.4', '198.18.2.5'] as const;
/** Base of the raw source addresses the UDP generator uses (one address per 50 000 flows). */
export const FLOW_SRC_BASE = '198.18.16.1';
export const FLOW_SRC_NET = '198.18.16.0/20';
/** Core the contender (and the balancer namespace's softirq) runs on. */
export const BALANCER_CPU = 0;
/** Core the generators and sinks run on. */
export const GENERATOR_CPU = 1;
/**
 * Generator core busy fraction from which a figure is the generator's, not the contender's
 * (when the contender's own core is below it): a lower bound of the contender's capacity.
 */
export const GENERATOR_BOUND = 0.9;

export interface BenchTopology {
  readonly topo: Topology;
  readonly snd: Namespace;
  readonly lb: Namespace;
  readonly srv: Namespace;
  /** lb's interface towards snd and towards srv. */
  readonly lbIn: string;
  readonly lbOut: string;
  destroy(): Promise<void>;
}

async function setRps(ns: Namespace, ifName: string, cpu: number): Promise<void> {
  const mask = (1 << cpu).toString(16);
  await ns.exec('sh', [
    '-c',
    `for q in /sys/class/net/${ifName}/queues/rx-*; do echo ${mask} > $q/rps_cpus; done`,
  ]);
}

/**
 * Interrupt moderation for the NAPI that `keepXdpOnBalancerCore` pins: after a poll that found
 * frames the kernel re-polls on a timer (`gro_flush_timeout`, ns) instead of being woken by
 * the next frame, and goes back to waking after `deferHardIrqs` empty re-polls. A NIC does the
 * same in hardware (adaptive moderation holds interrupts for up to a few hundred µs under
 * load); veth has none, so without this every burst wakes the thread, and each wake-up is a
 * context switch on the balancer core that a NIC's interrupt does not cost. 200 µs: shorter
 * timers cost more here, since arming one traps to the hypervisor on the bench's guests
 * (bench/analysis.md). Same for every contender that receives through the interface.
 */
export const XDP_NAPI_MODERATION: NapiModeration = { deferHardIrqs: 2, flushTimeoutNs: 200_000 };

export interface NapiModeration {
  readonly deferHardIrqs: number;
  readonly flushTimeoutNs: number;
}

/**
 * Once an XDP program is attached to `ifName` in `ns` (its NAPI exists only then): threaded
 * NAPI, the thread pinned to `cpu`, with `moderation` (null: none, a wake-up per burst).
 * Throws when the thread cannot be found or pinned.
 */
export async function keepXdpOnBalancerCore(
  ns: Namespace,
  ifName: string,
  cpu = BALANCER_CPU,
  moderation: NapiModeration | null = XDP_NAPI_MODERATION,
): Promise<void> {
  const m = moderation ?? { deferHardIrqs: 0, flushTimeoutNs: 0 };
  const dev = `/sys/class/net/${ifName}`;
  await ns.exec('sh', [
    '-c',
    `echo 1 > ${dev}/threaded && echo ${m.deferHardIrqs} > ${dev}/napi_defer_hard_irqs && echo ${m.flushTimeoutNs} > ${dev}/gro_flush_timeout && pids=$(pgrep "^napi/${ifName}-") && for p in $pids; do taskset -pc ${cpu} $p >/dev/null; done`,
  ]);
}

const here = dirname(fileURLToPath(import.meta.url));
const XDP_ADDON = resolve(
  here,
  here.includes('/dist/') ? '../../..' : '../..',
  'native/xdp-shed/build/Release/xdp_shed.node',
);

/**
 * For a userspace contender without XDP of its own (nginx): a program that passes everything,
 * attached to `ifName` by a helper process in `ns` (the relay's addon with no limits), its NAPI
 * pinned like the relay's. A veth with XDP receives through NAPI in batches, which costs less
 * per datagram than the backlog it uses otherwise: without this, a relay with `kernelShed: xdp`
 * would be measured on a cheaper receive path than its competitor. Stop the daemon to detach.
 */
export async function startXdpPass(ns: Namespace, ifName: string, vip: string): Promise<Daemon> {
  if (!existsSync(XDP_ADDON))
    throw new Error(`${XDP_ADDON} is not built (sh native/build.sh xdp-shed)`);
  const script = `const a = require(${JSON.stringify(XDP_ADDON)});
const id = a.open(4, Buffer.from(${JSON.stringify(vip)}.split('.').map(Number)), [4500], 16);
a.attach(id, process.argv[1], false);
a.setLimits(id, 0, 0);
console.log('attached');
setInterval(() => {}, 1 << 30);`;
  const d = startDaemon(ns, GENERATOR_CPU, process.execPath, ['-e', script, ifName], 'xdp pass');
  try {
    await d.waitFor((out) => out.includes('attached'), 5_000);
    await keepXdpOnBalancerCore(ns, ifName);
  } catch (err) {
    await d.stop();
    throw err;
  }
  return d;
}

/** Builds the topology; the caller must `destroy()` it (also on failure). */
export async function createBenchTopology(): Promise<BenchTopology> {
  const topo = Topology.create('bench');
  try {
    const snd = await topo.addNamespace('snd', { forwarding: false });
    const lb = await topo.addNamespace('lb');
    const srv = await topo.addNamespace('srv', { forwarding: false });
    const a = await topo.link({
      a: 'snd',
      b: 'lb',
      aAddresses: [`${SND_ADDR}/24`],
      bAddresses: [`${LB_SND_ADDR}/24`],
    });
    const b = await topo.link({
      a: 'lb',
      b: 'srv',
      aAddresses: [`${LB_SRV_ADDR}/24`],
      bAddresses: SERVER_ADDRS.map((x) => `${x}/24`),
    });
    await lb.exec('ip', ['addr', 'add', `${VIP}/32`, 'dev', 'lo']);
    await topo.route('snd', 'default', LB_SND_ADDR);
    await topo.route('srv', 'default', LB_SRV_ADDR);
    await topo.route('lb', FLOW_SRC_NET, SND_ADDR);
    // Raw-socket sources are not local to snd: accept what comes back without reverse-path drops.
    for (const ns of [snd, lb, srv]) {
      await ns.exec('sysctl', ['-qw', 'net.ipv4.conf.all.rp_filter=0']);
      await ns.exec('sysctl', ['-qw', 'net.ipv4.conf.default.rp_filter=0']);
    }
    // Connection-rate runs open tens of thousands of short connections: whichever side closes
    // first keeps each in TIME_WAIT for 60 s. Without reuse, the 28 k default ephemeral ports of
    // the sender (and of a proxy dialling the servers) run out within a minute and connect()
    // spins in the kernel's port search, measuring the port table instead of the contender.
    for (const ns of [snd, lb]) {
      await ns.exec('sysctl', ['-qw', 'net.ipv4.ip_local_port_range=1024 65000']);
      await ns.exec('sysctl', ['-qw', 'net.ipv4.tcp_tw_reuse=1']);
    }
    await setRps(lb, a.bIf, BALANCER_CPU);
    await setRps(lb, b.aIf, BALANCER_CPU);
    await setRps(snd, a.aIf, GENERATOR_CPU);
    await setRps(srv, b.bIf, GENERATOR_CPU);
    return { topo, snd, lb, srv, lbIn: a.bIf, lbOut: b.aIf, destroy: () => topo.destroy() };
  } catch (err) {
    await topo.destroy();
    throw err;
  }
}
