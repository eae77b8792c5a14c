/**
 * CPU accounting for the benchmarks: per-core busy fractions from /proc/stat (the balancer's
 * core includes its softirq work, which is where the kernel data plane spends its time) and a
 * process's own CPU time from /proc/PID/stat.
 */
import { spawnSync } from 'node:child_process';
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

/** The workload of `coreSpeeds`: MiB of SHA-256 per second over two 0.4 s windows, the faster. */
const SPEED_SCRIPT = `const c = require('node:crypto'); const b = Buffer.alloc(1 << 20, 7); let best = 0;
for (let w = 0; w < 2; w++) { let n = 0; const t = process.hrtime.bigint(); let e = 0n;
  do { c.createHash('sha256').update(b).digest(); n++; e = process.hrtime.bigint() - t; } while (e < 400000000n);
  best = Math.max(best, n / (Number(e) / 1e9)); }
console.log(best.toFixed(1));`;

/**
 * Each core's speed at a fixed single-threaded workload (SHA-256, MiB/s), one core at a time
 * (taskset). A hypervisor that gives this guest less CPU time than usual shows here, where the
 * guest's own load average does not; the bench records it at the start and at the end of a run
 * (undefined for a core where the probe could not run).
 */
export function coreSpeeds(cores: number): (number | undefined)[] {
  return Array.from({ length: cores }, (_, i) => {
    const r = spawnSync('taskset', ['-c', String(i), process.execPath, '-e', SPEED_SCRIPT], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    const v = Number(r.stdout?.trim());
    return r.status === 0 && Number.isFinite(v) && v > 0 ? v : undefined;
  });
}

/**
 * Whether a core's speed changed by more than a fifth between the start and the end of a run
 * (pure): the text of a finding, or undefined.
 */
export function speedChange(
  start: readonly (number | undefined)[],
  end: readonly (number | undefined)[],
): string | undefined {
  const changed = start.flatMap((s, i) => {
    const e = end[i];
    return s !== undefined && e !== undefined && (e / s < 0.8 || e / s > 1.25)
      ? [`CPU ${i} ${s} → ${e} MiB/s`]
      : [];
  });
  return changed.length
    ? `The machine's speed changed during the run (SHA-256 on one core: ${changed.join(', ')}): the hypervisor gave this guest more or less CPU time than at the start, which the load average inside the guest does not show. Figures measured early and late in the run are not comparable; ratios of contenders measured back to back are less affected.`
    : undefined;
}
