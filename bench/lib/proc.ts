/**
 * Process helpers for the benchmarks: build the C generators, run a tool inside a namespace
 * pinned to a core and read its JSON report, keep a long-running contender alive and stop it by
 * PID. Every process is started by us inside our own namespaces and ended by its PID.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Namespace } from '../../lab/netns.js';
import { sleep } from '../../src/util/wait.js';

/** Paths of the compiled C tools. */
export interface CTools {
  readonly udpgen: string;
  readonly udpsink: string;
  readonly tcpbench: string;
}

/** Compiles bench/c/*.c with the machine's gcc into `outDir`. */
export async function buildCTools(srcDir: string, outDir: string): Promise<CTools> {
  mkdirSync(outDir, { recursive: true });
  const tools = {
    udpgen: join(outDir, 'udpgen'),
    udpsink: join(outDir, 'udpsink'),
    tcpbench: join(outDir, 'tcpbench'),
  };
  for (const [name, out] of Object.entries(tools)) {
    await new Promise<void>((resolve, reject) =>
      execFile('gcc', ['-O2', '-Wall', '-o', out, join(srcDir, `${name}.c`)], (err, _o, stderr) =>
        err ? reject(new Error(`gcc ${name}.c: ${stderr}`)) : resolve(),
      ),
    );
  }
  return tools;
}

/** Last line of `text` that parses as a JSON object. */
export function lastJson<T = Record<string, unknown>>(text: string): T | undefined {
  const lines = text.trim().split('\n').reverse();
  for (const line of lines) {
    const t = line.trim();
    if (!t.startsWith('{')) continue;
    try {
      return JSON.parse(t) as T;
    } catch {
      /* not JSON */
    }
  }
  return undefined;
}

/** Runs a tool to completion in `ns` on `cpu` (taskset) and returns its last JSON line. */
export async function runTool<T>(
  ns: Namespace,
  cpu: number | string,
  cmd: string,
  args: readonly string[],
  timeoutMs = 60_000,
): Promise<T> {
  const child = ns.spawn('taskset', ['-c', String(cpu), cmd, ...args]);
  const out = await collect(child, timeoutMs);
  const json = lastJson<T>(out.stdout);
  if (!json)
    throw new Error(
      `${cmd} ${args.join(' ')}: no report (exit ${out.code}): ${out.stderr.slice(-400)}`,
    );
  return json;
}

/** A tool running to completion whose progress lines can be awaited (e.g. "warm-up done"). */
export interface RunningTool<T> {
  readonly pid: number;
  /** Resolves when a stdout line satisfies `predicate`; rejects on exit or after `timeoutMs`. */
  waitForLine(predicate: (line: string) => boolean, timeoutMs: number): Promise<void>;
  /** The tool's last JSON line once it exits. */
  readonly done: Promise<T>;
}

/** Starts a tool in `ns` on `cpu` (taskset) without waiting for it (see `runTool`). */
export function startTool<T>(
  ns: Namespace,
  cpu: number | string,
  cmd: string,
  args: readonly string[],
  timeoutMs = 60_000,
): RunningTool<T> {
  const child = ns.spawn('taskset', ['-c', String(cpu), cmd, ...args]);
  let seen = '';
  let exited = false;
  child.stdout?.on('data', (d: Buffer) => (seen += d.toString()));
  child.once('exit', () => (exited = true));
  const done = collect(child, timeoutMs).then((out) => {
    const json = lastJson<T>(out.stdout);
    if (!json)
      throw new Error(
        `${cmd} ${args.join(' ')}: no report (exit ${out.code}): ${out.stderr.slice(-400)}`,
      );
    return json;
  });
  done.catch(() => undefined); // the caller awaits it; never an unhandled rejection meanwhile
  return {
    pid: child.pid ?? -1,
    done,
    async waitForLine(predicate, ms) {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        if (seen.split('\n').some((l) => predicate(l.trim()))) return;
        if (exited) throw new Error(`${cmd} exited before the expected line`);
        await sleep(5);
      }
      throw new Error(`${cmd}: expected line not seen after ${ms} ms`);
    },
  };
}

/** Waits for a child to exit, collecting its output; kills it (by PID) after `timeoutMs`. */
export function collect(
  child: ChildProcess,
  timeoutMs: number,
): Promise<{ stdout: string; stderr: string; code: number | null }> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.pid && safeKill(child.pid, 'SIGKILL'), timeoutMs);
    // 'close', not 'exit': only then have both pipes delivered everything.
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code });
    });
  });
}

export function safeKill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

/** A long-running process (contender, sink, server) with its output kept for diagnostics. */
export class Daemon {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  #exited: Promise<number | null>;
  exitCode: number | null | undefined;

  constructor(
    child: ChildProcess,
    readonly label: string,
  ) {
    this.child = child;
    child.stdout?.on(
      'data',
      (d: Buffer) => (this.stdout = (this.stdout + d.toString()).slice(-200_000)),
    );
    child.stderr?.on(
      'data',
      (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-200_000)),
    );
    this.#exited = new Promise((resolve) =>
      child.once('exit', (code) => {
        this.exitCode = code;
        setImmediate(() => resolve(code));
      }),
    );
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.exitCode === undefined;
  }

  /** Resolves when `predicate(stdout+stderr)` holds; rejects if the process exits or time runs out. */
  async waitFor(predicate: (out: string) => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (predicate(this.stdout + this.stderr)) return;
      if (!this.alive)
        throw new Error(
          `${this.label} exited (${this.exitCode}): ${(this.stderr || this.stdout).slice(-800)}`,
        );
      await sleep(50);
    }
    throw new Error(
      `${this.label}: not ready after ${timeoutMs} ms: ${(this.stderr || this.stdout).slice(-800)}`,
    );
  }

  /** SIGTERM, then SIGKILL after `graceMs`; returns the output. */
  async stop(graceMs = 3000): Promise<string> {
    if (this.alive) {
      safeKill(this.pid, 'SIGTERM');
      const t = setTimeout(() => safeKill(this.pid, 'SIGKILL'), graceMs);
      await this.#exited;
      clearTimeout(t);
    }
    return this.stdout;
  }
}

/** Starts a daemon in `ns`, pinned to `cpu`. */
export function startDaemon(
  ns: Namespace,
  cpu: number | string,
  cmd: string,
  args: readonly string[],
  label: string,
  env?: NodeJS.ProcessEnv,
): Daemon {
  const child = ns.spawn(
    'taskset',
    ['-c', String(cpu), cmd, ...args],
    env ? { env: { ...process.env, ...env } } : undefined,
  );
  return new Daemon(child, label);
}

/** Polls until a TCP/UDP port is bound in `ns` (ss), for contenders that print nothing. */
export async function waitForListen(
  ns: Namespace,
  proto: 'tcp' | 'udp',
  port: number,
  timeoutMs: number,
  daemon?: Daemon,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const out = await ns
      .exec('ss', [proto === 'tcp' ? '-ltnH' : '-lunH', `sport = :${port}`])
      .catch(() => '');
    if (out.trim()) return;
    if (daemon && !daemon.alive)
      throw new Error(
        `${daemon.label} exited (${daemon.exitCode}): ${(daemon.stderr || daemon.stdout).slice(-800)}`,
      );
    await sleep(50);
  }
  throw new Error(
    `nothing listens on ${proto}/${port} after ${timeoutMs} ms${daemon ? `: ${(daemon.stderr || daemon.stdout).slice(-800)}` : ''}`,
  );
}
