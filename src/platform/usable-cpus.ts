/**
 * How many CPUs this process can use: the CPUs it may run on (its affinity, which
 * `os.availableParallelism()` counts) bounded by the CPU time its cgroup allows. A container
 * started with `--cpus=1` on a 16-core host sees 16 cores but gets one core's time: 16 worker
 * processes there would only take turns. The quota is read as the kernel publishes it
 * (cgroups(7)): cgroup v2 `cpu.max` ("QUOTA PERIOD", or "max PERIOD" for none), cgroup v1
 * `cpu.cfs_quota_us` (-1: none) over `cpu.cfs_period_us`, of the process's cgroup and of each
 * ancestor up to the hierarchy's mount, the smallest counting. Walking up also finds the quota
 * of a container that shares the host's cgroup namespace: /proc/self/cgroup then names the
 * host's path (/docker/ID) while the container's own cgroup is mounted at the root. A fraction
 * rounds up (1.5 CPUs of time can keep two busy half the time, and one would leave half a CPU
 * unused).
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** Reads a file, or undefined where it is missing or unreadable. */
export type FileReader = (path: string) => string | undefined;

const readOrUndefined: FileReader = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

/** The CPUs' worth of time the cgroup quota allows, or undefined when there is none. */
export function cgroupCpuQuota(read: FileReader = readOrUndefined): number | undefined {
  const self = read('/proc/self/cgroup');
  if (self === undefined) return undefined;
  let quota: number | undefined;
  const keep = (q: number | undefined) => {
    if (q !== undefined && q > 0 && (quota === undefined || q < quota)) quota = q;
  };
  /** The directories of `path` and its ancestors under `mount`, the mount itself last. */
  const upFrom = (mount: string, path: string) => {
    const parts = path.split('/').filter((p) => p !== '');
    return parts
      .map((_, i) => [mount, ...parts.slice(0, parts.length - i)].join('/'))
      .concat(mount);
  };
  for (const line of self.split('\n')) {
    const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line.trim()) ?? [];
    if (path === undefined) continue;
    if (controllers === '') {
      // cgroup v2.
      for (const dir of upFrom('/sys/fs/cgroup', path)) {
        const m = /^(\d+|max)\s+(\d+)/.exec(read(`${dir}/cpu.max`)?.trim() ?? '');
        if (m && m[1] !== 'max') keep(Number(m[1]) / Number(m[2]));
      }
    } else if (controllers?.split(',').includes('cpu')) {
      // cgroup v1: the cpu controller's hierarchy, mounted as cpu,cpuacct or cpu.
      const mount = [`/sys/fs/cgroup/${controllers}`, '/sys/fs/cgroup/cpu'].find(
        (m) => read(`${m}/cpu.cfs_period_us`) !== undefined,
      );
      for (const dir of mount ? upFrom(mount, path) : []) {
        const q = Number(read(`${dir}/cpu.cfs_quota_us`)?.trim());
        const p = Number(read(`${dir}/cpu.cfs_period_us`)?.trim());
        if (Number.isFinite(q) && Number.isFinite(p) && p > 0 && q > 0) keep(q / p);
      }
    }
  }
  return quota;
}

/** What `usableCpus` counted, and why, in words for a log line. */
export interface UsableCpus {
  readonly cpus: number;
  readonly affinity: number;
  /** The cgroup quota in CPUs, where there is one. */
  readonly quota?: number;
  readonly why: string;
}

/** The CPUs this process can keep busy, with the affinity and quota that decided it. */
export function usableCpuReport(
  read: FileReader = readOrUndefined,
  affinity: number = availableParallelism(),
): UsableCpus {
  const quota = cgroupCpuQuota(read);
  const cores = (n: number) => `${n} CPU${n === 1 ? '' : 's'}`;
  if (quota === undefined)
    return {
      cpus: Math.max(1, affinity),
      affinity,
      why: `${cores(affinity)} in its affinity, no cgroup CPU quota`,
    };
  const cpus = Math.max(1, Math.min(affinity, Math.ceil(quota)));
  const q = `cgroup CPU quota ${Number(quota.toFixed(2))} CPUs`;
  return {
    cpus,
    affinity,
    quota,
    why:
      Math.ceil(quota) < affinity
        ? `${q}, of ${cores(affinity)} in its affinity`
        : `${cores(affinity)} in its affinity, under a ${q}`,
  };
}

/** The CPUs this process can keep busy: its affinity, bounded by the cgroup quota; at least 1. */
export function usableCpus(
  read: FileReader = readOrUndefined,
  affinity: number = availableParallelism(),
): number {
  return usableCpuReport(read, affinity).cpus;
}
