/**
 * `vpnlb demo --duration S --json` end to end (loopback, no root): the done-when conditions of
 * the demo — no split handshake in any phase, failures at the servers' per-IP limit behind plain
 * full NAT, none with the SNAT pool.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { demoCommand } from '../cli/commands/demo.js';
import type { DemoReport } from './demo-runner.js';

test('vpnlb demo --json: full NAT fails at the per-IP limit, the SNAT pool does not, affinity holds', async () => {
  const out: string[] = [];
  const err: string[] = [];
  const code = await demoCommand.run(['--duration', '6', '--json'], {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
  });
  assert.equal(code, 0, err.join('\n'));
  assert.equal(out.length, 1, 'exactly one JSON object on stdout');
  const report = JSON.parse(out[0]!) as DemoReport;
  const { fullNat, snatPool } = report.phases;
  for (const phase of [fullNat, snatPool]) {
    assert.equal(phase.splitHandshakes, 0);
    assert.equal(phase.attempted, 30);
    assert.equal(phase.connected + phase.failed, phase.attempted);
    assert.deepEqual(Object.keys(phase.backends).sort(), ['rras1', 'rras2', 'rras3']);
    const clients = Object.values(phase.backends).reduce((n, b) => n + b.clients, 0);
    assert.equal(clients, phase.connected, 'every connected client is on exactly one backend');
  }
  // Plain full NAT: one source address, so at most perIpLimit SAs per server get through.
  assert.deepEqual(fullNat.sourceAddresses, ['127.0.0.1']);
  assert.ok(fullNat.failedByPerIpLimit > 0, 'clients refused at the per-IP limit');
  assert.equal(fullNat.failedOther, 0);
  for (const b of Object.values(fullNat.backends)) assert.ok(b.clients <= report.perIpLimit);
  // SNAT pool: nobody fails, and the servers saw several source addresses.
  assert.equal(snatPool.failed, 0);
  assert.equal(snatPool.failedByPerIpLimit, 0);
  assert.ok(snatPool.sourceAddresses.length > 1);
  assert.match(report.adminUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+\/$/);
});
