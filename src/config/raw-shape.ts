/**
 * Reading a configuration document before its schema has been checked: the semantic checks run
 * on input that may have any shape, and skip what is not what they look for.
 */

/** A plain object (not null, not a list). */
export const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** A list, or an empty one for anything else. */
export const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
