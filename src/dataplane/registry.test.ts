import assert from 'node:assert/strict';
import test from 'node:test';
import { chooseAutoIkePlane, relayProcesses } from './registry.js';

const service = (o: Partial<Parameters<typeof chooseAutoIkePlane>[0]> = {}) => ({
  name: 'ike',
  dataplane: 'auto' as const,
  nat: 'transparent' as const,
  kernelShed: 'auto' as const,
  ...o,
});
const kernelOk = { ok: true } as const;
const noKernel = { ok: false, reason: 'nftables (nft) is not usable: not found' } as const;

test('dataplane auto: the kernel plane where it is available, silently by default', () => {
  assert.deepEqual(chooseAutoIkePlane(service(), kernelOk), { plane: 'kernel' });
  assert.deepEqual(chooseAutoIkePlane(service({ kernelShed: 'off' }), kernelOk), {
    plane: 'kernel',
  });
});

test('dataplane auto landing on the kernel plane says that kernelShed: xdp is not used', () => {
  const c = chooseAutoIkePlane(service({ kernelShed: 'xdp' }), kernelOk);
  assert.equal(c.plane, 'kernel');
  assert.match(c.warning ?? '', /^ike: dataplane auto chose the kernel data plane/);
  assert.match(c.warning ?? '', /does not use kernelShed: xdp/);
  assert.match(c.warning ?? '', /dataplane: userspace/);
});

test('dataplane auto without the kernel: the relay, and a warning only when it changes the NAT mode', () => {
  const t = chooseAutoIkePlane(service(), noKernel);
  assert.equal(t.plane, 'relay');
  assert.match(t.warning ?? '', /nft\) is not usable: not found.*full NAT/);
  assert.deepEqual(chooseAutoIkePlane(service({ nat: 'full', kernelShed: 'xdp' }), noKernel), {
    plane: 'relay',
  });
});

test('dataplane userspace is the relay, whatever the kernel can do', () => {
  assert.deepEqual(
    chooseAutoIkePlane(service({ dataplane: 'userspace', kernelShed: 'xdp' }), kernelOk),
    { plane: 'relay' },
  );
});

test('relay workers: as asked where the groups can be opened, else one process and why', () => {
  assert.deepEqual(relayProcesses(1, undefined), { workers: 1 });
  assert.deepEqual(relayProcesses(4, undefined), { workers: 4 });
  const r = relayProcesses(4, 'addon not built (run scripts/setup.sh)');
  assert.equal(r.workers, 1);
  assert.match(r.warning ?? '', /main process, not in 4 workers: addon not built/);
});
