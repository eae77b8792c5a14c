/**
 * Runs the privileged tools of the kernel data plane (`nft`, `conntrack`, `sysctl`), optionally
 * inside a network namespace (`ip netns exec NAME ...`), so that integration tests can program a
 * balancer namespace from the test process. Never throws: a failure is a tagged result that the
 * caller counts and logs.
 */
import { execFile } from 'node:child_process';

/** Outcome of one command: its stdout, or why it failed (exit code and stderr). */
export type CommandResult =
  | { readonly ok: true; readonly stdout: string; readonly stderr: string }
  | {
      readonly ok: false;
      readonly code: number | string;
      readonly stdout: string;
      readonly stderr: string;
      readonly message: string;
    };

/**
 * The one result type for what an external tool produced (nft, conntrack, a bench contender):
 * a value, or the reason it failed. Never thrown: the caller counts and logs the error.
 */
export type ToolResult<T = void> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: string };

/** Runs one command with optional stdin text. */
export type CommandRunner = (
  cmd: string,
  args: readonly string[],
  input?: string,
) => Promise<CommandResult>;

export interface CommandRunnerOptions {
  /** Network namespace to run in (`ip netns exec`); the host's namespace when absent. */
  readonly netns?: string;
  /**
   * Kill the command after this many milliseconds. Default 300 s: it only catches a hung
   * command — a full `nft -j list table` (a 65,537-element map) takes ~3 s on an idle
   * two-core machine and over 60 s at load 40.
   */
  readonly timeoutMs?: number;
}

/** The real runner: `execFile`, no shell, large output buffer (`nft -j list` of a full map is ~2 MB). */
export function createCommandRunner(options: CommandRunnerOptions = {}): CommandRunner {
  return (cmd, args, input) =>
    new Promise<CommandResult>((resolve) => {
      const [file, argv] = options.netns
        ? ['ip', ['netns', 'exec', options.netns, cmd, ...args]]
        : [cmd, [...args]];
      const child = execFile(
        file,
        argv,
        { maxBuffer: 256 * 1024 * 1024, timeout: options.timeoutMs ?? 300_000, encoding: 'utf8' },
        (err, stdout, stderr) => {
          if (!err) {
            resolve({ ok: true, stdout, stderr });
            return;
          }
          const e = err as NodeJS.ErrnoException & { code?: number | string };
          resolve({
            ok: false,
            code: e.code ?? 'unknown',
            stdout: stdout ?? '',
            stderr: stderr ?? '',
            message: (stderr ?? '').trim() || e.message,
          });
        },
      );
      // A missing binary emits 'error' on the child too; the callback above already reports it.
      child.on('error', () => undefined);
      if (input !== undefined) {
        child.stdin?.on('error', () => undefined);
        child.stdin?.end(input);
      }
    });
}
