/**
 * Pure helpers for the benchmark figures: medians of repeated runs and ratios that carry the
 * reason when they cannot be computed (a contender that could not run gives `null` + reason,
 * never a made-up number).
 */

/** Median of the finite values (mean of the two middle ones for an even count); NaN when none. */
export function median(values: readonly number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/** A ratio, or null with the reason it could not be computed. */
export type Ratio = { value: number; reason?: undefined } | { value: null; reason: string };

/**
 * `numerator / denominator` where both are measured figures; a figure may be missing (the
 * contender did not run) and then the reason travels with the null.
 */
export function ratio(
  numerator: number | null | undefined,
  denominator: number | null | undefined,
  reasons: { numerator?: string; denominator?: string } = {},
): Ratio {
  if (numerator === null || numerator === undefined || !Number.isFinite(numerator)) {
    return { value: null, reason: reasons.numerator ?? 'numerator not measured' };
  }
  if (denominator === null || denominator === undefined || !Number.isFinite(denominator)) {
    return { value: null, reason: reasons.denominator ?? 'denominator not measured' };
  }
  if (denominator === 0) return { value: null, reason: 'denominator is zero' };
  return { value: numerator / denominator };
}

/** The spread of a ratio over its repeats: the lowest and highest of the per-repeat ratios. */
export interface Spread {
  readonly min: number;
  readonly max: number;
}

/**
 * A ratio of medians with its spread over the repeats: repeat i of the numerator is paired with
 * repeat i of the denominator (the contenders run one after the other, so pairs are as close in
 * time as the run allows). Pairs with a missing or zero side are left out; no pair, no spread.
 */
export function ratioOfRepeats(
  numerator: readonly number[] | undefined,
  denominator: readonly number[] | undefined,
  reasons: { numerator?: string; denominator?: string } = {},
): Ratio & { spread?: Spread } {
  const r = ratio(
    numerator ? median(numerator) : null,
    denominator ? median(denominator) : null,
    reasons,
  );
  if (r.value === null || !numerator || !denominator) return r;
  const pairs: number[] = [];
  for (let i = 0; i < Math.min(numerator.length, denominator.length); i++) {
    const n = numerator[i]!;
    const d = denominator[i]!;
    if (Number.isFinite(n) && Number.isFinite(d) && d !== 0) pairs.push(n / d);
  }
  return pairs.length > 0
    ? { ...r, spread: { min: Math.min(...pairs), max: Math.max(...pairs) } }
    : r;
}

/** The lower of two ratios (a null wins, with its reason: the lower of unknown is unknown). */
export function lowerRatio(a: Ratio, b: Ratio): Ratio {
  if (a.value === null) return a;
  if (b.value === null) return b;
  return a.value <= b.value ? a : b;
}

/** Whether a ratio meets a target (`value >= target`); null when unknown. */
export function meets(r: Ratio, target: number): boolean | null {
  return r.value === null ? null : r.value >= target;
}

/** Formats a number for the report: integers grouped, small values with 3 significant digits. */
export function fmt(n: number | null | undefined, digits = 3): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString('en-US');
  return Number(n.toPrecision(digits)).toString();
}
