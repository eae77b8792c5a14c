/**
 * Readiness, status and watchdog for systemd (`Type=notify`, sd_notify(3)).
 *
 * The protocol is one datagram on the AF_UNIX socket named by `$NOTIFY_SOCKET`. Node has no
 * AF_UNIX datagram sockets (`dgram` is UDP only, `net` is stream only), so vpnlb does not send
 * it itself: it runs `systemd-notify` (Debian package `systemd`, present wherever the unit runs)
 * with the same environment. systemd accepts a message from a process other than the main one
 * only with `NotifyAccess=all` (systemd.exec(5)), which the packaged unit sets. Since systemd
 * 246, `systemd-notify` waits for the manager to have read the message (a `BARRIER=1` after it,
 * without `--no-block`), so the manager can still tell which unit the short-lived sender
 * belonged to: no race with its exit. The alternative, a few lines of C in one of the native
 * addons, was rejected: those addons are optional (the build may fail and vpnlb must still
 * run), while readiness is not.
 *
 * Cost: one short process at start, one at stop, and one per watchdog ping (every half of
 * `WatchdogSec=`, 15 s with the packaged unit's 30 s): negligible.
 *
 * Outside systemd (`NOTIFY_SOCKET` unset) every call does nothing.
 */
import { createCommandRunner, type CommandRunner } from './command-runner.js';
import type { Logger } from '../log/logger.js';

export interface ServiceNotifierOptions {
  /** Environment to read `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
  /** Runs `systemd-notify` (tests inject a recorder). */
  readonly runner?: CommandRunner;
  readonly logger: Logger;
  /** This process's pid (compared with `WATCHDOG_PID`). */
  readonly pid?: number;
}

/** Status texts are one line; systemd shows them in `systemctl status`. */
function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').slice(0, 500);
}

/**
 * Talks to the service manager: `ready()` once the data planes are programmed, `stopping()`
 * at shutdown, and watchdog pings while `WatchdogSec=` asks for them.
 */
export class ServiceNotifier {
  readonly #env: NodeJS.ProcessEnv;
  readonly #run: CommandRunner;
  readonly #logger: Logger;
  readonly #pid: number;
  #watchdog: NodeJS.Timeout | undefined;

  constructor(options: ServiceNotifierOptions) {
    this.#env = options.env ?? process.env;
    this.#run = options.runner ?? createCommandRunner({ timeoutMs: 10_000 });
    this.#logger = options.logger.child({ component: 'systemd' });
    this.#pid = options.pid ?? process.pid;
  }

  /** True when started by systemd with a notification socket (`Type=notify`). */
  get isEnabled(): boolean {
    return Boolean(this.#env.NOTIFY_SOCKET);
  }

  /**
   * The watchdog interval systemd expects pings at (half of `WatchdogSec=`, as sd_watchdog_enabled(3)
   * recommends), or undefined without a watchdog or when it is meant for another process.
   */
  watchdogIntervalMs(): number | undefined {
    const usec = Number(this.#env.WATCHDOG_USEC);
    if (!this.isEnabled || !Number.isFinite(usec) || usec <= 0) return undefined;
    if (this.#env.WATCHDOG_PID && Number(this.#env.WATCHDOG_PID) !== this.#pid) return undefined;
    return Math.max(1, Math.floor(usec / 2000));
  }

  /** `READY=1` with a status line, then the watchdog pings start. */
  async ready(status: string): Promise<void> {
    if (!this.isEnabled) return;
    await this.#send(['--ready', `--status=${oneLine(status)}`]);
    const interval = this.watchdogIntervalMs();
    if (interval !== undefined && this.#watchdog === undefined) {
      this.#watchdog = setInterval(() => void this.#send(['WATCHDOG=1']), interval);
      this.#watchdog.unref();
    }
  }

  /** `STOPPING=1`: the unit shows "deactivating" while the data planes are torn down. */
  async stopping(status: string): Promise<void> {
    this.#stopWatchdog();
    if (!this.isEnabled) return;
    await this.#send(['STOPPING=1', `--status=${oneLine(status)}`]);
  }

  #stopWatchdog(): void {
    if (this.#watchdog) clearInterval(this.#watchdog);
    this.#watchdog = undefined;
  }

  async #send(args: readonly string[]): Promise<void> {
    const r = await this.#run('systemd-notify', args);
    if (!r.ok) {
      this.#logger.warn(
        { args, error: r.message },
        `systemd-notify ${args.join(' ')} failed: ${r.message} (the unit needs NotifyAccess=all and the systemd package's systemd-notify)`,
      );
    }
  }
}
