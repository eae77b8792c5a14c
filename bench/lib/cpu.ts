/**
 * CPU accounting for the benchmarks: per-core busy fractions from /proc/stat (the balancer's
 * core includes its softirq work, which is where the kernel data plane spends its time) and a
 * process's own CPU time from /proc/PID/stat.
 */
import { readFileSync } from 'node:fs';

/** Jiffies per core: [busy, total]. */
export type CoreTimes = ReadonlyMap<number, readonly [number, number]>;

/** Reads the per-core counters of /proc/stat. */
export function readCoreTimes(): CoreTimes {
  const out = new Map<number, readonly [number, number]>();
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const v = m[2]!.trim().split(/\s+/).map(Number);
    // user nice system idle iowait irq softirq steal ...
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    out.set(Number(m[1]), [total - idle, total]);
  }
  return out;
}

/** Busy fraction (0..1) of each core between two readings. */
export function coreBusy(before: CoreTimes, after: CoreTimes): Record<number, number> {
  const res: Record<number, number> = {};
  for (const [cpu, [b1, t1]] of after) {
    const prev = before.get(cpu);
    if (!prev) continue;
    const dt = t1 - prev[1];
    res[cpu] = dt > 0 ? (b1 - prev[0]) / dt : 0;
  }
  return res;
}

const CLK_TCK = 100;

/** CPU seconds (user + system) a live process has used so far, or undefined when it is gone. */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    return (utime + stime) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** Resident set size of a live process in bytes (VmRSS), or undefined. */
export function processRssBytes(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
