/**
 * BIRD's control channel, through `birdc -s SOCKET` (one command per call, no shell), and the
 * parser of its `show protocols` table. The runner is injected: unit tests feed recorded output.
 */
import type { CommandRunner } from '../platform/command-runner.js';
import { VpnlbError } from '../errors.js';

export const BIRDC_PATH = '/usr/sbin/birdc';

/** One row of `birdc show protocols`. */
export interface BirdProtocol {
  readonly name: string;
  /** `BGP`, `Static`, `Device`, `BFD`, … */
  readonly proto: string;
  /** `up`, `down`, `start`, `stop`. */
  readonly state: string;
  readonly since: string;
  /** BGP: `Established`, `Active`, `Connect`, `Idle`, with the last error if any. */
  readonly info: string;
}

/**
 * `show protocols` as printed by BIRD 2.0:
 * ```
 * BIRD 2.0.12 ready.
 * Name       Proto      Table      State  Since         Info
 * vip1       Static     master4    up     11:21:55.285
 * peer_r1    BGP        ---        up     11:21:55.281  Established
 * ```
 * Columns are separated by runs of spaces; `Since` is one token (time of day, or a date and
 * time when older than a day: `2026-12-01 11:21:55`, two tokens).
 */
export function parseProtocols(text: string): BirdProtocol[] {
  const out: BirdProtocol[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim() || /^BIRD .* ready\.$/.test(line.trim()) || /^Name\s+Proto\s+Table/.test(line))
      continue;
    const m =
      /^(\S+)\s+(\S+)\s+(\S+)\s+(up|down|start|stop|flush)\s+(\d{4}-\d\d-\d\d \S+|\S+)\s*(.*)$/.exec(
        line,
      );
    if (!m) continue;
    out.push({ name: m[1]!, proto: m[2]!, state: m[4]!, since: m[5]!, info: m[6]!.trim() });
  }
  return out;
}

export class BirdControl {
  readonly #run: CommandRunner;
  readonly #socket: string;

  constructor(run: CommandRunner, socket: string) {
    this.#run = run;
    this.#socket = socket;
  }

  async #birdc(args: readonly string[]): Promise<string> {
    const r = await this.#run(BIRDC_PATH, ['-s', this.#socket, ...args]);
    if (!r.ok)
      throw new VpnlbError('VPNLB_BGP_START', `birdc ${args.join(' ')}: ${r.message}`, 'internal');
    return r.stdout;
  }

  async protocols(): Promise<BirdProtocol[]> {
    return parseProtocols(await this.#birdc(['show', 'protocols']));
  }

  /**
   * `enable` announces a VIP's static route, `disable` withdraws it. BIRD answers
   * `vip1: enabled` or `vip1: already enabled` (both mean done); anything else is an error.
   */
  async setEnabled(protocol: string, enabled: boolean): Promise<void> {
    const verb = enabled ? 'enable' : 'disable';
    const out = await this.#birdc([verb, protocol]);
    if (!new RegExp(`^${protocol}: (already )?${verb}d$`, 'm').test(out)) {
      throw new VpnlbError(
        'VPNLB_BGP_START',
        `birdc ${verb} ${protocol}: unexpected answer ${JSON.stringify(out.trim().slice(0, 300))}`,
        'internal',
      );
    }
  }
}
