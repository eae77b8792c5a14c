/**
 * `vpnlb bgp start`: writes the node's files, loads the reply-NAT table, runs BIRD as a child
 * that dies with this process, and gates each announcement on this node's own vpnlb (checked
 * every `bgp.checkInterval` through the admin API) through `birdc enable|disable`.
 *
 * Nobody may keep announcing a VIP that nobody serves (issue 14):
 * - `vpnlb run` dies or stops answering: `checkFall` failed checks in a row withdraw.
 * - This supervisor dies (even `kill -9`): BIRD was started with PR_SET_PDEATHSIG = SIGKILL
 *   (`setpriv --pdeathsig KILL`), so the kernel kills it at once; its BGP sessions close, and
 *   the routers drop its routes (BIRD renders `graceful restart off`, so they keep none stale).
 * - Stop (SIGTERM): every announcement is withdrawn first (UPDATEs), then BIRD stops.
 * - BIRD dies alone: it is restarted in 1 s with every announcement disabled, and the next
 *   check enables what is healthy.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type { Logger } from '../log/logger.js';
import { createCommandRunner, type CommandRunner } from '../platform/command-runner.js';
import { VpnlbError } from '../errors.js';
import { sleep, waitUntil } from '../util/wait.js';
import {
  evaluateAnnouncements,
  type AnnouncementVerdict,
  type StatusLike,
} from './announce-health.js';
import { BIRDC_PATH, BirdControl, type BirdProtocol } from './bird-control.js';
import type { BgpAnnouncementState, BgpPeerState, BgpState } from './bgp-state.js';
import { peerProtocol, vipProtocol } from './render-bird.js';
import type { BgpNodeFiles } from './render-node.js';

export const BIRD_PATH = '/usr/sbin/bird';
export const SETPRIV_PATH = '/usr/bin/setpriv';

export interface BgpSupervisorOptions {
  readonly node: BgpNodeFiles;
  readonly logger: Logger;
  /** Reads this node's vpnlb status document (the admin API, authenticated); rejects on failure. */
  readonly readStatus: () => Promise<unknown>;
  /** Runs nft and birdc (tests may inject one). */
  readonly run?: CommandRunner;
  /** Network namespace to run BIRD, birdc and nft in (tests drive several nodes from one process). */
  readonly netns?: string;
}

/** Whether the drain flag is set (`vpnlb node drain` writes `1`, `resume` writes `0`). */
export function isDrained(drainFile: string): boolean {
  try {
    return readFileSync(drainFile, 'utf8').trim() === '1';
  } catch {
    return false;
  }
}

/** Writes the rendered files (directory root-only). */
export function writeBgpFiles(node: BgpNodeFiles): void {
  mkdirSync(node.paths.dir, { recursive: true, mode: 0o700 });
  for (const [path, text] of node.files) writeFileSync(path, text, { mode: 0o600 });
}

export class BgpSupervisor {
  readonly #o: BgpSupervisorOptions;
  readonly #run: CommandRunner;
  readonly #bird: BirdControl;
  #child: ChildProcess | undefined;
  #birdOutput = '';
  #restarts = 0;
  #stopping = false;
  #timer: NodeJS.Timeout | undefined;
  /** Per announcement: whether BIRD's protocol is enabled, failures in a row, last reason, since. */
  readonly #current: { announced: boolean; failures: number; reason: string; since: string }[];
  #withdrawals = 0;
  #lastChange: BgpState['lastChange'] = null;
  #checking: Promise<void> | undefined;

  constructor(options: BgpSupervisorOptions) {
    this.#o = options;
    this.#run =
      options.run ??
      createCommandRunner({
        timeoutMs: 10_000,
        ...(options.netns ? { netns: options.netns } : {}),
      });
    this.#bird = new BirdControl(this.#run, options.node.paths.birdSocket);
    const now = new Date().toISOString();
    this.#current = options.node.bgp.announce.map(() => ({
      announced: false,
      failures: 0,
      reason: 'starting',
      since: now,
    }));
  }

  async start(): Promise<void> {
    const { node, logger } = this.#o;
    for (const bin of [BIRD_PATH, BIRDC_PATH, SETPRIV_PATH]) {
      if (!existsSync(bin))
        throw new VpnlbError(
          'VPNLB_BGP_START',
          `${bin} is missing (apt-get install bird2 util-linux)`,
          'internal',
        );
    }
    writeBgpFiles(node);
    if (node.bgp.replyNat) {
      const r = await this.#run('nft', ['-f', node.paths.replyNat]);
      if (!r.ok)
        throw new VpnlbError(
          'VPNLB_BGP_START',
          `nft -f ${node.paths.replyNat}: ${r.message}`,
          'internal',
        );
    }
    await this.#startBird();
    await this.checkOnce();
    this.#schedule();
    logger.info(
      { component: 'bgp', node: node.self.name },
      `bgp: ${node.self.name} (router id ${node.self.routerId}, AS ${node.bgp.asn}) running BIRD; peers ${node.self.peers.map((p) => `${p.name} ${p.address}`).join(', ')}`,
    );
  }

  /** Spawns BIRD in the foreground, killed by the kernel if this process dies; waits for its socket. */
  async #startBird(): Promise<void> {
    const p = this.#o.node.paths;
    // Ours alone (the run directory is this node's): a socket left by a killed BIRD blocks nothing, but tells nothing either.
    rmSync(p.birdSocket, { force: true });
    const argv = [
      SETPRIV_PATH,
      '--pdeathsig',
      'KILL',
      '--',
      BIRD_PATH,
      '-f',
      '-c',
      p.birdConf,
      '-s',
      p.birdSocket,
      '-P',
      p.birdPid,
    ];
    // `ip netns exec` execs its command: setpriv (and then BIRD) is still this process's child.
    const [cmd, ...args] = this.#o.netns ? ['ip', 'netns', 'exec', this.#o.netns, ...argv] : argv;
    const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    const onData = (b: Buffer) => {
      this.#birdOutput = (this.#birdOutput + b.toString()).slice(-20_000);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code, signal) => {
      if (this.#stopping) return;
      this.#restarts++;
      // BIRD starts with every static protocol disabled: the next check enables what is healthy.
      for (const c of this.#current) c.announced = false;
      this.#o.logger.error(
        {
          component: 'bgp',
          code,
          signal,
          restarts: this.#restarts,
          output: this.#birdOutput.slice(-2000),
        },
        `bgp: bird exited (${signal ?? code}); restarting in 1 s`,
      );
      setTimeout(() => {
        if (!this.#stopping)
          void this.#startBird().catch((err: Error) =>
            this.#o.logger.error(
              { component: 'bgp', err: err.message },
              'bgp: bird restart failed',
            ),
          );
      }, 1000).unref();
    });
    await waitUntil(
      `bird's socket ${p.birdSocket}`,
      () => child.exitCode !== null || existsSync(p.birdSocket),
      10_000,
      50,
    ).catch(() => undefined);
    if (!existsSync(p.birdSocket))
      throw new VpnlbError(
        'VPNLB_BGP_START',
        `bird did not open ${p.birdSocket} within 10 s: ${this.#birdOutput.slice(-1000)}`,
        'internal',
      );
  }

  /** One check after another (never two in flight), one interval apart. */
  #schedule(): void {
    this.#timer = setTimeout(() => {
      void this.checkOnce().finally(() => {
        if (!this.#stopping) this.#schedule();
      });
    }, this.#o.node.bgp.checkInterval);
  }

  /** Reads the status, decides each announcement, applies the changes, writes the state file. */
  async checkOnce(): Promise<BgpState> {
    while (this.#checking) await this.#checking;
    let done!: () => void;
    this.#checking = new Promise((r) => (done = r));
    try {
      const { bgp, paths } = this.#o.node;
      let status: StatusLike | undefined;
      let error: string | undefined;
      try {
        status = (await withTimeout(
          this.#o.readStatus(),
          Math.max(2000, 2 * bgp.checkInterval),
        )) as StatusLike;
      } catch (err) {
        const e = err as Error & { cause?: Error };
        error = e.cause?.message ?? e.message;
      }
      const drained = isDrained(paths.drainFile);
      const verdicts = evaluateAnnouncements({
        announce: bgp.announce,
        status,
        ...(error !== undefined ? { error } : {}),
        drained,
      });
      await this.#apply(verdicts, drained);
      const state = this.#state(drained, await this.#bird.protocols().catch(() => undefined));
      writeFileSync(`${paths.stateFile}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
      renameSync(`${paths.stateFile}.tmp`, paths.stateFile);
      return state;
    } finally {
      this.#checking = undefined;
      done();
    }
  }

  async #apply(verdicts: readonly AnnouncementVerdict[], drained: boolean): Promise<void> {
    const { bgp } = this.#o.node;
    for (const [i, v] of verdicts.entries()) {
      const c = this.#current[i]!;
      c.failures = v.ok ? 0 : c.failures + 1;
      // A drain is on purpose: at once. A failed check may be a busy host: `checkFall` in a row.
      const want = v.ok || (c.announced && !drained && c.failures < bgp.checkFall);
      if (want === c.announced) {
        if (!c.announced && c.reason !== v.reason) c.reason = v.reason;
        continue;
      }
      try {
        await this.#bird.setEnabled(vipProtocol(i), want);
      } catch (err) {
        this.#o.logger.error(
          { component: 'bgp', address: v.address, err: (err as Error).message },
          `bgp: could not ${want ? 'announce' : 'withdraw'} ${v.address}`,
        );
        continue;
      }
      const at = new Date().toISOString();
      if (!want) this.#withdrawals++;
      c.announced = want;
      c.reason = v.reason;
      c.since = at;
      this.#lastChange = { at, address: v.address, announced: want, reason: v.reason };
      this.#o.logger[want ? 'info' : 'warn'](
        { component: 'bgp', address: v.address, announced: want, reason: v.reason },
        `bgp: ${want ? 'announcing' : 'withdrew'} ${bgp.announce[i]!.prefix}${want ? '' : `: ${v.reason}`}`,
      );
    }
  }

  #state(drained: boolean, protocols: readonly BirdProtocol[] | undefined): BgpState {
    const { bgp, self } = this.#o.node;
    const announcements: BgpAnnouncementState[] = bgp.announce.map((a, i) => {
      const c = this.#current[i]!;
      return {
        address: a.address,
        prefix: a.prefix,
        services: a.services,
        announced: c.announced,
        reason: c.announced ? 'ok' : c.reason,
        since: c.since,
      };
    });
    const peers: BgpPeerState[] = self.peers.map((p) => {
      const row = protocols?.find((r) => r.name === peerProtocol(p));
      return {
        name: p.name,
        address: p.address,
        asn: p.asn,
        state: row?.state ?? 'unknown',
        info: row?.info ?? (protocols ? 'not configured' : 'bird did not answer'),
        established: row?.info.startsWith('Established') ?? false,
      };
    });
    const running =
      this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
    return {
      node: self.name,
      routerId: self.routerId,
      asn: bgp.asn,
      updatedAt: new Date().toISOString(),
      checkInterval: bgp.checkInterval,
      drained,
      bird: { running, pid: running ? (this.#child?.pid ?? null) : null, restarts: this.#restarts },
      announcements,
      peers,
      withdrawals: this.#withdrawals,
      lastChange: this.#lastChange,
    };
  }

  /** PIDs (for the lab and tests): BIRD's is the setpriv child's, which exec'd BIRD. */
  pids(): { bird: number | undefined } {
    return { bird: this.#child?.pid };
  }

  /** Withdraws every announcement, lets the UPDATEs leave, then stops BIRD. */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#timer) clearTimeout(this.#timer);
    while (this.#checking) await this.#checking;
    for (const [i, c] of this.#current.entries()) {
      if (!c.announced) continue;
      await this.#bird.setEnabled(vipProtocol(i), false).catch(() => undefined);
      c.announced = false;
      c.reason = 'vpnlb bgp stopped';
      c.since = new Date().toISOString();
    }
    // BIRD sends the withdrawals at once; give them a moment on the wire before the sessions close.
    await sleep(300);
    const state = this.#state(isDrained(this.#o.node.paths.drainFile), undefined);
    writeFileSync(
      this.#o.node.paths.stateFile,
      `${JSON.stringify({ ...state, bird: { ...state.bird, running: false, pid: null } }, null, 2)}\n`,
    );
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no status within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
