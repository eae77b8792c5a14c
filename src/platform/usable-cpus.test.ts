import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cgroupCpuQuota, usableCpuReport, usableCpus, type FileReader } from './usable-cpus.js';

/** A file system of the given files (anything else is missing). */
const files =
  (f: Record<string, string>): FileReader =>
  (path) =>
    f[path];

test('cgroup v2: the quota of the process cgroup, rounded up, bounds the affinity', () => {
  const read = files({
    '/proc/self/cgroup': '0::/system.slice/vpnlb.service\n',
    '/sys/fs/cgroup/system.slice/vpnlb.service/cpu.max': '150000 100000\n',
    '/sys/fs/cgroup/system.slice/cpu.max': 'max 100000\n',
  });
  assert.equal(cgroupCpuQuota(read), 1.5);
  assert.equal(usableCpus(read, 16), 2);
  assert.equal(usableCpus(read, 1), 1); // the affinity is the bound when it is smaller
});

test('cgroup v2: an ancestor with a smaller quota wins; a container sees its own cgroup as /', () => {
  const nested = files({
    '/proc/self/cgroup': '0::/kubepods/pod1/ctr\n',
    '/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max': 'max 100000',
    '/sys/fs/cgroup/kubepods/pod1/cpu.max': '50000 100000',
    '/sys/fs/cgroup/kubepods/cpu.max': '400000 100000',
  });
  assert.equal(cgroupCpuQuota(nested), 0.5);
  assert.equal(usableCpus(nested, 8), 1);
  const container = files({
    '/proc/self/cgroup': '0::/\n',
    '/sys/fs/cgroup/cpu.max': '200000 100000',
  });
  assert.equal(usableCpus(container, 64), 2);
});

test('cgroup v1 (and hybrid): cpu.cfs_quota_us over cpu.cfs_period_us, -1 for none', () => {
  const v1 = files({
    '/proc/self/cgroup': '4:memory:/x\n2:cpu,cpuacct:/docker/abc\n0::/\n',
    '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '-1\n',
    '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000\n',
    '/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us': '300000\n',
    '/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us': '100000\n',
  });
  assert.equal(usableCpus(v1, 32), 3);
  // A container sharing the host's cgroup namespace: the host's path in /proc/self/cgroup,
  // its own cgroup mounted at the root.
  const shared = files({
    '/proc/self/cgroup': '3:cpu,cpuacct:/docker/abc\n',
    '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '100000\n',
    '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000\n',
  });
  assert.equal(usableCpus(shared, 16), 1);
  const unlimited = files({
    '/proc/self/cgroup': '1:cpu:/\n0::/\n',
    '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1\n',
    '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n',
  });
  assert.equal(cgroupCpuQuota(unlimited), undefined);
  assert.equal(usableCpus(unlimited, 2), 2);
});

test('no cgroup information (not Linux, or unreadable): the affinity', () => {
  assert.equal(usableCpus(files({}), 4), 4);
  assert.equal(usableCpus(files({ '/proc/self/cgroup': 'garbage' }), 4), 4);
  assert.ok(usableCpus() >= 1); // this machine, whatever it is
});

test('usableCpuReport says whether the affinity or the cgroup quota decided', () => {
  const quota = (q: string) =>
    files({ '/proc/self/cgroup': '0::/ctr\n', '/sys/fs/cgroup/ctr/cpu.max': `${q} 100000\n` });
  assert.deepEqual(usableCpuReport(quota('150000'), 16), {
    cpus: 2,
    affinity: 16,
    quota: 1.5,
    why: 'cgroup CPU quota 1.5 CPUs, of 16 CPUs in its affinity',
  });
  assert.equal(
    usableCpuReport(quota('400000'), 2).why,
    '2 CPUs in its affinity, under a cgroup CPU quota 4 CPUs',
  );
  assert.equal(usableCpuReport(quota('max'), 1).why, '1 CPU in its affinity, no cgroup CPU quota');
});
