/**
 * The chaos run's seeded fault order. Every run injects each kind at least once, in an order
 * drawn from the seed (the spare server is added, a server killed, the spare removed, in that
 * order, see below); a longer run continues with further faults drawn from the same
 * seed while time remains. Same seed, same sequence: a failing run can be replayed.
 */
import type { Random } from './flood.js';

export const FAULT_KINDS = [
  /** `kill -9` of one server's charon; restarted a little later with no state (its clients re-establish elsewhere). */
  'kill-server',
  /** `vpnlb backend drain` of a server (its tunnels stay), `enable` a little later. */
  'drain-enable',
  /** The spare server joins the configuration. */
  'add-server',
  /** The spare server is disabled (its tunnels move), then leaves the configuration. */
  'remove-server',
  /** New backend weights in the configuration. */
  'weights',
  /** `kill -9` of vpnlb, then a new start (it adopts the kernel table). */
  'kill-vpnlb',
  /** SIGTERM of a vpnlb started with `--keep-state`, then a new start. */
  'restart-keep-state',
  /** Malformed and random UDP to 500/4500 and garbage TCP to the SSTP port, while nothing else happens. */
  'flood',
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

/** Faults a long run repeats (the flood runs once: its window is the one compared with the baseline). */
const REPEATABLE: readonly FaultKind[] = [
  'kill-server',
  'drain-enable',
  'weights',
  'kill-vpnlb',
  'restart-keep-state',
  'add-server',
];

/** Fisher–Yates with the given source. */
function shuffle<T>(items: readonly T[], rnd: Random): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/**
 * An endless fault sequence: every kind of `kinds` (default: all) once (seeded order; add,
 * kill, remove in that order), then repeats.
 * In the repeats `add-server` stands for "toggle the spare server": the caller turns it into
 * `remove-server` when the spare is already configured.
 */
export function* faultPlan(
  rnd: Random,
  kinds: readonly FaultKind[] = FAULT_KINDS,
): Generator<FaultKind, never> {
  const first = shuffle(kinds, rnd);
  // The spare is added, then a server is killed (its clients' new handshakes give the spare
  // tunnels: a reconnecting client whose conntrack entries live goes back to its old server),
  // then the spare is removed with tunnels on it. Those three keep their drawn slots.
  const ordered = (['add-server', 'kill-server', 'remove-server'] as FaultKind[]).filter((k) =>
    kinds.includes(k),
  );
  const slots = first.map((k, i) => (ordered.includes(k) ? i : -1)).filter((i) => i >= 0);
  slots.forEach((slot, n) => {
    first[slot] = ordered[n]!;
  });
  yield* first;
  const repeatable = REPEATABLE.filter((k) => kinds.includes(k));
  for (;;) yield repeatable[Math.floor(rnd() * repeatable.length)]!;
}
