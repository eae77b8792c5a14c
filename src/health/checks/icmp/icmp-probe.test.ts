/**
 * Unit part of the icmp probe's tests: what loopback allows (every 127/8 and ::1 address answers
 * echo, so "down", "silent" and "garbage" targets need a namespace: the whole conformance suite
 * runs in test/integration/health-icmp.test.ts as root).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createIcmpProbe } from './icmp-probe.js';

function pingUsable(): string | undefined {
  try {
    execFileSync('ping', ['-n', '-c', '1', '-W', '1', '127.0.0.1'], { stdio: 'ignore' });
    return undefined;
  } catch (err) {
    return `ping cannot run here (${(err as Error).message.split('\n')[0]}): install iputils-ping`;
  }
}
const skip = pingUsable();

describe('icmp probe (loopback)', { skip }, () => {
  for (const [address, family] of [
    ['127.0.0.1', 4],
    ['::1', 6],
  ] as const) {
    it(`is up against ${address}`, async () => {
      const r = await createIcmpProbe().probe(
        { address, family },
        new AbortController().signal,
        2000,
      );
      assert.equal(r.ok, true, r.detail);
      assert.match(r.detail, /echo reply/);
      assert.ok(r.latencyMs >= 0);
    });
  }

  it('does nothing when the signal is already aborted', async () => {
    const ac = new AbortController();
    ac.abort();
    const r = await createIcmpProbe().probe({ address: '127.0.0.1', family: 4 }, ac.signal, 2000);
    assert.equal(r.ok, false);
    assert.match(r.detail, /aborted/);
  });

  it('rejects names and family mismatches without running ping (no DNS)', async () => {
    for (const target of [
      { address: 'localhost', family: 4 as const },
      { address: '::1', family: 4 as const },
    ]) {
      const r = await createIcmpProbe().probe(target, new AbortController().signal, 2000);
      assert.equal(r.ok, false);
      assert.match(r.detail, /not an IP(v4)? address/);
    }
  });

  it('reports a missing ping binary as down with the fix', async () => {
    const r = await createIcmpProbe({ command: ['/nonexistent/ping'] }).probe(
      { address: '127.0.0.1', family: 4 },
      new AbortController().signal,
      2000,
    );
    assert.equal(r.ok, false);
    assert.match(r.detail, /not found \(install iputils-ping\)/);
  });
});
