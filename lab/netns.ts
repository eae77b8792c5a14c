/**
 * Network-namespace topologies for the lab, the integration tests and the benchmarks (root).
 *
 * Every namespace, veth and nftables table a topology creates carries a per-run unique prefix,
 * and `destroy()` removes them all (also after a failure: tests call it in `after`/`finally`, and
 * `process.on('exit')` and SIGINT, SIGTERM and SIGHUP remove what is left). Addresses come only from 198.18.0.0/15 and
 * 2001:db8::/32. Routed veth pairs, not bridges: inside namespaces br_netfilter would NAT on
 * the bridge (DESIGN §4).
 */
import {
  execFile,
  execFileSync,
  spawn,
  type ChildProcess,
  type SpawnOptions,
} from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { hasFile, type Availability } from './requirements.js';
import { readCounterObjects, type CounterFamily } from '../src/dataplane/kernel/nft-counters.js';

const execFileP = promisify(execFile);

/** True when this process can create namespaces (root with `ip` available). */
export function canUseNamespaces(): Availability {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'needs root (network namespaces)' };
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return { ok: false, reason: 'iproute2 (`ip`) is not installed' };
  }
  return { ok: true };
}

/** True when `nft` is installed (and we are root). */
export function canUseNftables(): Availability {
  const ns = canUseNamespaces();
  if (!ns.ok) return ns;
  try {
    execFileSync('nft', ['--version'], { stdio: 'ignore' });
  } catch {
    return { ok: false, reason: 'nftables (`nft`) is not installed' };
  }
  return { ok: true };
}

/** True when nft and the `conntrack` tool (conntrack-tools) are installed, as root. */
export function canUseConntrack(): Availability {
  const nft = canUseNftables();
  if (!nft.ok) return nft;
  const paths = ['/usr/sbin/conntrack', '/sbin/conntrack', '/usr/bin/conntrack'];
  return paths.some((p) => hasFile(p, 'conntrack').ok)
    ? { ok: true }
    : { ok: false, reason: 'conntrack missing (apt-get install conntrack)' };
}

/** Runs a command, rejecting with its stderr on failure. */
export async function run(cmd: string, args: readonly string[], input?: string): Promise<string> {
  try {
    if (input !== undefined) {
      return await new Promise<string>((resolve, reject) => {
        const child = execFile(
          cmd,
          [...args],
          { maxBuffer: 64 * 1024 * 1024 },
          (err, stdout, stderr) => {
            if (err) reject(Object.assign(err, { stderr }));
            else resolve(stdout);
          },
        );
        child.stdin?.end(input);
      });
    }
    const { stdout } = await execFileP(cmd, [...args], { maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`);
  }
}

export interface Namespace {
  /** Full namespace name (with the run prefix). */
  readonly name: string;
  /** Runs a command inside the namespace. */
  exec(cmd: string, args: readonly string[], input?: string): Promise<string>;
  /** Spawns a long-running process inside the namespace (killed by `destroy()`). */
  spawn(cmd: string, args: readonly string[], options?: SpawnOptions): ChildProcess;
}

/**
 * Packets of the nft named counters in a namespace, summed by counter name over the tables asked
 * for (every table of every family when the query is empty): the netlink reader when it is built
 * (src/dataplane/kernel/nft-counters.ts), else `nft -j list counters`, which fetches every set
 * element first (seconds per read with a few 65537-slot maps on a busy host). A missing table
 * reads as no counters.
 */
export async function counterPackets(
  ns: Namespace,
  query: { readonly family: CounterFamily; readonly table: string } | Record<string, never> = {},
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const counters = await readCounterObjects({ ...query, netns: ns.name }, (args) =>
    ns.exec('nft', args).catch(() => undefined),
  );
  for (const c of counters) out[c.name] = (out[c.name] ?? 0) + c.packets;
  return out;
}

export interface LinkSpec {
  /** Namespace names (short, without prefix) of the two ends. */
  readonly a: string;
  readonly b: string;
  /** Addresses with prefix length, e.g. `198.18.1.1/24` or `2001:db8:1::1/64`. */
  readonly aAddresses: readonly string[];
  readonly bAddresses: readonly string[];
}

const live = new Set<Topology>();
let exitHookInstalled = false;

/**
 * A set of namespaces joined by routed veth pairs. Create with `Topology.create(label)`.
 */
export class Topology {
  /** Unique per run: `<label>-<6 hex>`; every object name starts with it. */
  readonly prefix: string;
  readonly #namespaces = new Map<string, Namespace>();
  readonly #children = new Set<ChildProcess>();
  #linkCount = 0;
  #destroyed = false;

  private constructor(prefix: string) {
    this.prefix = prefix;
  }

  /** `label`: a few letters saying what created it (e.g. `ike`, `bench`); kept short for IFNAMSIZ. */
  static create(label: string): Topology {
    const t = new Topology(`${label.slice(0, 5)}${randomBytes(3).toString('hex')}`);
    live.add(t);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      const destroyAll = () => {
        for (const topo of live) topo.destroySync();
      };
      process.on('exit', destroyAll);
      // A lab stopped by a signal (Ctrl-C, a runner's SIGTERM) must not leave its namespaces and
      // the daemons inside them behind: clean up, then die of the same signal.
      for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
        process.once(sig, () => {
          destroyAll();
          process.kill(process.pid, sig);
        });
    }
    return t;
  }

  ns(short: string): Namespace {
    const ns = this.#namespaces.get(short);
    if (!ns) throw new Error(`no namespace "${short}" in topology ${this.prefix}`);
    return ns;
  }

  /** Adds a namespace (loopback up, forwarding on). */
  async addNamespace(short: string, options: { forwarding?: boolean } = {}): Promise<Namespace> {
    const name = `${this.prefix}-${short}`;
    await run('ip', ['netns', 'add', name]);
    const ns: Namespace = {
      name,
      exec: (cmd, args, input) => run('ip', ['netns', 'exec', name, cmd, ...args], input),
      spawn: (cmd, args, opts) => {
        const child = spawn('ip', ['netns', 'exec', name, cmd, ...args], {
          stdio: ['ignore', 'pipe', 'pipe'],
          ...opts,
        });
        this.#children.add(child);
        child.once('exit', () => this.#children.delete(child));
        return child;
      },
    };
    this.#namespaces.set(short, ns);
    await ns.exec('ip', ['link', 'set', 'lo', 'up']);
    if (options.forwarding !== false) {
      await ns.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
      await ns.exec('sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=1']);
    }
    // IPv6 duplicate address detection would delay addresses by seconds.
    await ns.exec('sysctl', ['-qw', 'net.ipv6.conf.all.accept_dad=0']).catch(() => undefined);
    await ns.exec('sysctl', ['-qw', 'net.ipv6.conf.default.accept_dad=0']).catch(() => undefined);
    return ns;
  }

  /** Joins two namespaces with a veth pair; returns the interface names (a side, b side). */
  async link(spec: LinkSpec): Promise<{ aIf: string; bIf: string }> {
    const n = this.#linkCount++;
    // Interface names are at most 15 characters; they live inside namespaces, so short is fine.
    const aIf = `v${n}${spec.b}`.slice(0, 15);
    const bIf = `v${n}${spec.a}`.slice(0, 15);
    const tmpA = `${this.prefix}a${n}`.slice(0, 15);
    const tmpB = `${this.prefix}b${n}`.slice(0, 15);
    await run('ip', ['link', 'add', tmpA, 'type', 'veth', 'peer', 'name', tmpB]);
    await run('ip', ['link', 'set', tmpA, 'netns', this.ns(spec.a).name, 'name', aIf]);
    await run('ip', ['link', 'set', tmpB, 'netns', this.ns(spec.b).name, 'name', bIf]);
    for (const [side, ifName, addrs] of [
      [spec.a, aIf, spec.aAddresses],
      [spec.b, bIf, spec.bAddresses],
    ] as const) {
      const ns = this.ns(side);
      for (const addr of addrs)
        await ns.exec('ip', [
          'addr',
          'add',
          addr,
          'dev',
          ifName,
          ...(addr.includes(':') ? ['nodad'] : []),
        ]);
      await ns.exec('ip', ['link', 'set', ifName, 'up']);
    }
    return { aIf, bIf };
  }

  /** Adds a route inside a namespace, e.g. `route('client', 'default', '198.18.1.1')`. */
  async route(short: string, dest: string, via: string): Promise<void> {
    const v6 = via.includes(':');
    await this.ns(short).exec('ip', [...(v6 ? ['-6'] : []), 'route', 'replace', dest, 'via', via]);
  }

  /** Kills the processes started in the topology, then deletes every namespace (and so its veths and tables). */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    live.delete(this);
    for (const child of this.#children) if (child.pid) killTree(child.pid);
    for (const ns of this.#namespaces.values()) {
      await killNamespacePids(ns.name);
      await run('ip', ['netns', 'del', ns.name]).catch(() => undefined);
    }
  }

  /** Synchronous variant for the process-exit hook. */
  destroySync(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const child of this.#children) if (child.pid) killTree(child.pid);
    for (const ns of this.#namespaces.values()) {
      try {
        const pids = execFileSync('ip', ['netns', 'pids', ns.name], { encoding: 'utf8' })
          .split(/\s+/)
          .filter(Boolean);
        for (const pid of pids)
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            /* already gone */
          }
        execFileSync('ip', ['netns', 'del', ns.name], { stdio: 'ignore' });
      } catch {
        /* best effort at exit */
      }
    }
  }
}

/** Kills every process running inside a namespace we created (they are all ours). */
async function killNamespacePids(name: string): Promise<void> {
  const out = await run('ip', ['netns', 'pids', name]).catch(() => '');
  for (const pid of out.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

function killTree(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}
