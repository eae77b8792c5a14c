/**
 * Locating configuration values in the YAML document: a path such as
 * `pools.rras.backends[1].address` and the line and column of the node it names.
 */
import { isMap, isPair, isScalar, type Document, type LineCounter, type Node } from 'yaml';

export type PathSeg = string | number;

/** A JSON pointer (`/pools/rras/backends/1`, as Ajv reports it) as a path. */
export function pointerToPath(pointer: string): PathSeg[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^[0-9]+$/.test(s) ? Number(s) : s));
}

/** `pools.rras.backends[1].address` */
export function formatPath(path: readonly PathSeg[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out ? `.${seg}` : seg;
  }
  return out;
}

/** The line and column of the deepest node of `path` the document has (its key with `keyOnly`). */
export function locateNode(
  doc: Document,
  lc: LineCounter,
  path: readonly PathSeg[],
  keyOnly: boolean,
): { line?: number; column?: number } {
  // Walk as deep as the document goes; report the deepest node that exists.
  let node: unknown = doc.contents;
  let keyNode: Node | undefined;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find(
        (p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg),
      );
      if (!pair) break;
      keyNode = pair.key as Node;
      node = pair.value;
    } else if (
      node &&
      typeof node === 'object' &&
      'items' in node &&
      Array.isArray((node as { items: unknown[] }).items)
    ) {
      const item = (node as { items: unknown[] }).items[Number(seg)];
      if (item === undefined) break;
      keyNode = undefined;
      node = item;
    } else {
      break;
    }
  }
  const target = (keyOnly ? keyNode : undefined) ?? (node as Node | undefined) ?? keyNode;
  const offset = target?.range?.[0];
  if (offset === undefined) return {};
  const pos = lc.linePos(offset);
  return { line: pos.line, column: pos.col };
}
