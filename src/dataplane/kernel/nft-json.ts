/**
 * Reading `nft -j list …` output: its items, and a listed set's elements. nft prints an element
 * bare (`"1.2.3.4"`, `{"concat": [hi, lo]}`) or, when it carries a timeout, wrapped:
 * `{"elem": {"val": …, "expires": n}}`.
 */

export type NftJsonItem = Record<string, Record<string, unknown> | undefined>;

/** The items of `{"nftables": [...]}`; none when the output has another shape. */
export function nftJsonItems(json: unknown): NftJsonItem[] {
  const arr = (json as { nftables?: unknown } | null)?.nftables;
  return Array.isArray(arr) ? (arr as NftJsonItem[]) : [];
}

export interface NftSetElement {
  readonly val: unknown;
  /** Whether nft printed it with its timeout (`{"elem": …}`). */
  readonly timed: boolean;
  /** Seconds left, where nft printed them (0 for a timed element printed without). */
  readonly expires: number;
}

/** The elements of one listed set (`item.set.elem`), unwrapped. */
export function nftSetElements(set: Record<string, unknown> | undefined): NftSetElement[] {
  const elem = set?.elem;
  if (!Array.isArray(elem)) return [];
  return elem.map((e) => {
    const wrapped = (e as { elem?: { val?: unknown; expires?: unknown } } | null)?.elem;
    return wrapped
      ? {
          val: wrapped.val,
          timed: true,
          expires: typeof wrapped.expires === 'number' ? wrapped.expires : 0,
        }
      : { val: e, timed: false, expires: 0 };
  });
}
