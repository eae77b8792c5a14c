/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): self time per function, top N. Pure.
 */
export interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    hitCount?: number;
  }>;
  samples?: number[];
  timeDeltas?: number[];
}

export interface Frame {
  readonly name: string;
  readonly where: string;
  readonly selfPercent: number;
}

/** Top `n` frames by self samples (frames with the same name and place are merged). */
export function topFrames(p: CpuProfile, n: number): Frame[] {
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const counts = new Map<string, number>();
  let total = 0;
  const hits = p.samples
    ? countSamples(p.samples)
    : new Map(p.nodes.map((x) => [x.id, x.hitCount ?? 0]));
  for (const [id, c] of hits) {
    const node = byId.get(id);
    if (!node) continue;
    const f = node.callFrame;
    const where = f.url
      ? `${f.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${f.lineNumber + 1}`
      : '';
    const key = `${f.functionName || '(anonymous)'}\u0000${where}`;
    counts.set(key, (counts.get(key) ?? 0) + c);
    total += c;
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, c]) => {
      const [name, where] = k.split('\u0000') as [string, string];
      return { name, where, selfPercent: total ? (100 * c) / total : 0 };
    });
}

function countSamples(samples: readonly number[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const s of samples) m.set(s, (m.get(s) ?? 0) + 1);
  return m;
}
