/** Parses a duration (seconds as a number, or `500ms` / `5s` / `10m` / `2h`) into milliseconds. */
export function parseDuration(value: number | string): number {
  if (typeof value === 'number') return Math.round(value * 1000);
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$/.exec(value);
  if (!m) throw new RangeError(`not a duration: ${value}`);
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  return Math.round(n * unit);
}

/** `parseDuration` for values that may be anything (semantic checks run on schema-invalid input too). */
export function safeDuration(v: unknown): number | undefined {
  try {
    return typeof v === 'number' || typeof v === 'string' ? parseDuration(v) : undefined;
  } catch {
    return undefined;
  }
}
