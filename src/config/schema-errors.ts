/**
 * Schema validation (TypeBox schema, Ajv) and the wording of its errors: one message per
 * problem, with the allowed values, a hint for patterns and a "did you mean" for unknown keys.
 */
import { Ajv, type ErrorObject } from 'ajv';
import { quoteValue } from './config-issues.js';
import { ConfigSchema, type ConfigInput } from './schema.js';

const ajv = new Ajv({ allErrors: true, strict: false, verbose: true });
export const validateSchema = ajv.compile<ConfigInput>(ConfigSchema);

/** Drops the noise of `anyOf` branches: one message for the union, none for each branch. */
export function simplifyAjvErrors(errors: ErrorObject[]): ErrorObject[] {
  const anyOfPaths = new Set(
    errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath),
  );
  return errors.filter(
    (e) =>
      e.keyword === 'anyOf' || !anyOfPaths.has(e.instancePath) || e.schemaPath.indexOf('anyOf') < 0,
  );
}

export function describeAjvError(e: ErrorObject): string {
  const schema = e.parentSchema as { description?: string; enum?: unknown[] } | undefined;
  switch (e.keyword) {
    case 'enum':
      return `must be one of: ${(schema?.enum ?? []).join(', ')} (got ${quoteValue(e.data)})`;
    case 'anyOf':
      return `must be ${schema?.description ?? 'one of the allowed forms'} (got ${quoteValue(e.data)})`;
    case 'pattern':
      return e.schemaPath.includes('propertyNames')
        ? `invalid name ${quoteValue(e.data)}: use letters, digits, - and _ (start with a letter)`
        : `invalid value ${quoteValue(e.data)}: ${patternHint(e)}`;
    case 'type':
      return `must be ${(e.params as { type: string }).type} (got ${quoteValue(e.data)})`;
    case 'maxItems':
      return `at most ${(e.params as { limit: number }).limit} entries (got ${Array.isArray(e.data) ? e.data.length : '?'})${e.instancePath.endsWith('/backends') ? ': see "Maximum number of backends" in docs/configuration.md' : ''}`;
    default:
      return `${e.message ?? 'invalid'} (got ${quoteValue(e.data)})`;
  }
}

function patternHint(e: ErrorObject): string {
  const pattern = String((e.params as { pattern: string }).pattern);
  if (pattern.includes('ms|s|m|h')) return 'a duration such as 500ms, 5s, 10m or 2h';
  if (pattern.includes('0,62')) return 'names use letters, digits, - and _ and start with a letter';
  return `must match ${pattern}`;
}

/** ` (did you mean "x"?)` or ` (allowed: ...)` for an unknown setting. */
export function suggest(extra: string, e: ErrorObject): string {
  const schema = e.parentSchema as { properties?: Record<string, unknown> } | undefined;
  const known = Object.keys(schema?.properties ?? {});
  // Edit distance is quadratic: a hostile 50 MB key must not cost minutes.
  const close =
    extra.length > 64
      ? undefined
      : known.find((k) => editDistance(k.toLowerCase(), extra.toLowerCase()) <= 2);
  return close
    ? ` (did you mean "${close}"?)`
    : known.length
      ? ` (allowed: ${known.join(', ')})`
      : '';
}

function editDistance(a: string, b: string): number {
  const d: number[] = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length]!;
}
