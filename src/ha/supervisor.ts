/**
 * `vpnlb ha start`: writes the node's files, raises the UDP conntrack timeout, starts conntrackd
 * and keepalived with their own run directory, restarts them when they exit, and runs the
 * health check keepalived tracks (check.sh reads its result). Stopping it stops keepalived
 * first (which gives the addresses away with a priority-0 advert, RFC 5798 §6.4.3), then
 * conntrackd.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import type { Logger } from '../log/logger.js';
import { createCommandRunner } from '../platform/command-runner.js';
import { VpnlbError } from '../errors.js';
import { evaluateHealth, formatVerdict, type HealthVerdict } from './health.js';
import { HA_REPLY_NAT_TABLE, type NodeFiles } from './render-pair.js';
import { CONNTRACKD_PATH } from './render-scripts.js';

export const KEEPALIVED_PATH = '/usr/sbin/keepalived';
const UDP_STREAM_TIMEOUT = '/proc/sys/net/netfilter/nf_conntrack_udp_timeout_stream';

/** Writes the rendered files (scripts executable, directory root-only). */
export function writeNodeFiles(node: NodeFiles): void {
  mkdirSync(node.paths.dir, { recursive: true, mode: 0o700 });
  mkdirSync(node.paths.keepalivedRun, { recursive: true, mode: 0o700 });
  for (const [path, text] of node.files) {
    writeFileSync(path, text, { mode: path.endsWith('.sh') ? 0o700 : 0o600 });
    chmodSync(path, path.endsWith('.sh') ? 0o700 : 0o600);
  }
}

/**
 * Replicated entries carry no `ct timeout` object (conntrackd does not replicate it), so the
 * kernel's UDP stream timeout governs them on the node that takes over: raise it to at least
 * `ha.conntrackUdpTimeout` (per network namespace). Returns what it did, for the log.
 */
export function raiseUdpStreamTimeout(seconds: number): string {
  let current: number;
  try {
    current = Number(readFileSync(UDP_STREAM_TIMEOUT, 'utf8').trim());
  } catch {
    return `${UDP_STREAM_TIMEOUT} is missing (nf_conntrack not loaded yet): not raised`;
  }
  if (current >= seconds) return `UDP stream conntrack timeout already ${current} s`;
  writeFileSync(UDP_STREAM_TIMEOUT, String(seconds));
  return `UDP stream conntrack timeout raised from ${current} s to ${seconds} s`;
}

interface Daemon {
  readonly name: string;
  readonly argv: readonly string[];
  child?: ChildProcess;
  restarts: number;
  output: string;
}

export interface SupervisorOptions {
  readonly node: NodeFiles;
  readonly logger: Logger;
  /** Reads this node's vpnlb status document (the admin API, authenticated); rejects on failure. */
  readonly readStatus: () => Promise<unknown>;
}

export class HaSupervisor {
  readonly #o: SupervisorOptions;
  readonly #daemons: Daemon[];
  #stopping = false;
  #timer: NodeJS.Timeout | undefined;
  #lastVerdict = '';

  constructor(options: SupervisorOptions) {
    this.#o = options;
    const p = options.node.paths;
    this.#daemons = [
      {
        name: 'conntrackd',
        argv: [CONNTRACKD_PATH, '-C', p.conntrackdConf],
        restarts: 0,
        output: '',
      },
      {
        name: 'keepalived',
        // A private /run for keepalived alone (its pid files), in a mount namespace of its own.
        argv: [
          'unshare',
          '--mount',
          '--propagation',
          'private',
          '--',
          'sh',
          '-c',
          `mount --bind '${p.keepalivedRun}' /run && exec ${KEEPALIVED_PATH} --dont-fork --log-console --vrrp --use-file '${p.keepalivedConf}'`,
        ],
        restarts: 0,
        output: '',
      },
    ];
  }

  /** Writes the files and starts both daemons; resolves once conntrackd's socket exists. */
  async start(): Promise<void> {
    const { node, logger } = this.#o;
    for (const bin of [CONNTRACKD_PATH, KEEPALIVED_PATH]) {
      if (!existsSync(bin))
        throw new VpnlbError(
          'VPNLB_HA_START',
          `${bin} is missing (apt-get install keepalived conntrackd)`,
          'internal',
        );
    }
    writeNodeFiles(node);
    await this.#loadReplyNat();
    this.#writeCheck(evaluateHealth(undefined, 'starting'));
    logger.info(
      { component: 'ha' },
      raiseUdpStreamTimeout(Math.ceil(node.ha.conntrackUdpTimeout / 1000)),
    );
    // Ours alone (the run directory is this node's): a lock left by a killed conntrackd blocks its restart.
    rmSync(node.paths.conntrackdLock, { force: true });
    rmSync(node.paths.conntrackdSocket, { force: true });
    this.#spawn(this.#daemons[0]!);
    const deadline = Date.now() + 10_000;
    while (!existsSync(node.paths.conntrackdSocket)) {
      if (Date.now() > deadline)
        throw new VpnlbError(
          'VPNLB_HA_START',
          `conntrackd did not open ${node.paths.conntrackdSocket} within 10 s: ${this.#daemons[0]!.output.slice(-1000)}`,
          'internal',
        );
      await new Promise((r) => setTimeout(r, 50));
    }
    await this.checkOnce();
    this.#scheduleCheck();
    this.#spawn(this.#daemons[1]!);
    logger.info(
      { component: 'ha', node: node.self.name, peer: node.peer.name },
      `ha: ${node.self.name} (priority ${node.self.priority}) running keepalived and conntrackd; peer ${node.peer.name}`,
    );
  }

  /**
   * Loads the reply-NAT table (one transaction that replaces an older one), or removes a table
   * a former `ha.replyNat: true` left. Before keepalived runs: the node may take the addresses
   * over at its first advert.
   */
  async #loadReplyNat(): Promise<void> {
    const { node, logger } = this.#o;
    const run = createCommandRunner({ timeoutMs: 30_000 });
    const file = node.files.get(node.paths.replyNat);
    // `table …; delete table …` in one transaction: removes the table whether or not it exists.
    const r =
      file !== undefined
        ? await run('nft', ['-f', node.paths.replyNat])
        : await run(
            'nft',
            ['-f', '-'],
            `table inet ${HA_REPLY_NAT_TABLE}\ndelete table inet ${HA_REPLY_NAT_TABLE}\n`,
          );
    if (!r.ok)
      throw new VpnlbError(
        'VPNLB_HA_START',
        `nft: ${file !== undefined ? `loading ${node.paths.replyNat}` : `removing table inet ${HA_REPLY_NAT_TABLE}`}: ${r.message}`,
        'internal',
      );
    if (file !== undefined)
      logger.info(
        { component: 'ha' },
        `ha: reply NAT loaded (table inet ${HA_REPLY_NAT_TABLE}): server packets of flows this node does not know leave with the service address`,
      );
  }

  /** One check after another (never two in flight), one interval apart. */
  #scheduleCheck(): void {
    this.#timer = setTimeout(() => {
      void this.checkOnce().finally(() => {
        if (!this.#stopping) this.#scheduleCheck();
      });
    }, this.#o.node.ha.checkInterval);
  }

  /** One health check of this node's vpnlb, written where check.sh reads it. */
  async checkOnce(): Promise<HealthVerdict> {
    let verdict: HealthVerdict;
    try {
      // A busy host answers slowly, not never: a slow status is not a dead balancer.
      const limit = Math.max(2000, 2 * this.#o.node.ha.checkInterval);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no status within ${limit} ms`)), limit);
      });
      try {
        verdict = evaluateHealth(
          (await Promise.race([this.#o.readStatus(), timeout])) as Parameters<
            typeof evaluateHealth
          >[0],
        );
      } finally {
        clearTimeout(timer);
      }
    } catch (err) {
      const e = err as Error & { cause?: Error };
      verdict = evaluateHealth(undefined, e.cause?.message ?? e.message);
    }
    this.#writeCheck(verdict);
    return verdict;
  }

  #writeCheck(verdict: HealthVerdict): void {
    const text = formatVerdict(verdict);
    const { checkFile } = this.#o.node.paths;
    // Atomic: check.sh must never read half a file.
    writeFileSync(`${checkFile}.tmp`, text);
    renameSync(`${checkFile}.tmp`, checkFile);
    if (text !== this.#lastVerdict) {
      this.#lastVerdict = text;
      const ok = verdict.alive.ok && verdict.backends.ok;
      this.#o.logger[ok ? 'info' : 'warn'](
        { component: 'ha', alive: verdict.alive, backends: verdict.backends },
        `ha: health ${ok ? 'ok' : text.trim().replace(/\n/g, '; ')}`,
      );
    }
  }

  #spawn(d: Daemon): void {
    const [cmd, ...args] = d.argv;
    const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    d.child = child;
    const onData = (b: Buffer) => {
      d.output = (d.output + b.toString()).slice(-20_000);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code, signal) => {
      if (this.#stopping) return;
      d.restarts++;
      this.#o.logger.error(
        {
          component: 'ha',
          daemon: d.name,
          code,
          signal,
          restarts: d.restarts,
          output: d.output.slice(-2000),
        },
        `ha: ${d.name} exited (${signal ?? code}); restarting in 1 s`,
      );
      if (d.name === 'conntrackd') rmSync(this.#o.node.paths.conntrackdLock, { force: true });
      setTimeout(() => {
        if (!this.#stopping) this.#spawn(d);
      }, 1000).unref();
    });
  }

  /** PIDs of the daemons (for the lab and tests). */
  pids(): Record<string, number | undefined> {
    return Object.fromEntries(this.#daemons.map((d) => [d.name, d.child?.pid]));
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#timer) clearTimeout(this.#timer);
    for (const d of [...this.#daemons].reverse()) {
      const child = d.child;
      if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined)
        continue;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
  }
}
