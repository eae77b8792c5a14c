import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lastFailover, parseConntrackdEntries, parseTransitions } from './ha-status.js';

const LOG = [
  '1700000000000 BACKUP 150 drain=0 check=ok',
  '1700000006000 MASTER 150 drain=0 check=ok',
  '1700000060000 conntrackd -B failed',
  '1700000100000 FAULT 150 drain=0 check=alive fail vpnlb does not answer: connect ECONNREFUSED 127.0.0.1:8088',
].join('\n');

test('transition log: lines parsed, noise skipped, the last failover carries its cause', () => {
  const t = parseTransitions(LOG);
  assert.deepEqual(
    t.map((x) => x.state),
    ['BACKUP', 'MASTER', 'FAULT'],
  );
  assert.deepEqual(lastFailover(t), {
    at: new Date(1700000100000).toISOString(),
    from: 'active',
    to: 'fault',
    cause: 'health check failed: vpnlb does not answer: connect ECONNREFUSED 127.0.0.1:8088',
  });
});

test('causes: planned drain, no servers, fail-back, peer gone, links down', () => {
  const drain = parseTransitions('1 MASTER 150 drain=0 check=ok\n2 BACKUP 1 drain=1 check=ok');
  assert.equal(lastFailover(drain)?.cause, 'planned drain (vpnlb node drain)');
  const noServers = parseTransitions(
    '1 MASTER 150 drain=0 check=ok\n2 BACKUP 99 drain=0 check=backends fail no usable server: ike4',
  );
  assert.equal(
    lastFailover(noServers)?.cause,
    'no usable server here (no usable server: ike4): priority lowered below the peer',
  );
  const failBack = parseTransitions('1 MASTER 100 drain=0 check=ok\n2 BACKUP 100 drain=0 check=ok');
  assert.equal(
    lastFailover(failBack)?.cause,
    'the peer took over (higher priority: fail-back or preemption)',
  );
  const takeover = parseTransitions(
    '1 BACKUP 100 drain=0 check=ok\n600001 MASTER 100 drain=0 check=ok',
  );
  assert.deepEqual(lastFailover(takeover), {
    at: new Date(600001).toISOString(),
    from: 'standby',
    to: 'active',
    cause:
      'the peer stopped advertising or gave the addresses up (dead, stopped, drained or unhealthy)',
  });
  assert.equal(lastFailover(parseTransitions('1 BACKUP 100 drain=0 check=ok')), null);
  const linkDown = parseTransitions(
    '1 MASTER 150 drain=0 check=ok\n2 FAULT 150 drain=0 check=link down: outside0 inside0',
  );
  assert.equal(
    lastFailover(linkDown)?.cause,
    'link down: outside0 inside0 (keepalived faults the group when a VRRP interface is down)',
  );
  assert.equal(
    lastFailover(parseTransitions('1 MASTER 150'))?.cause,
    'elected at start (the peer is absent or has a lower priority)',
  );
});

test('conntrackd -s: the cache size', () => {
  assert.equal(
    parseConntrackdEntries('cache internal:\ncurrent active connections:           23\n'),
    23,
  );
  assert.equal(parseConntrackdEntries('nothing'), null);
});

test('a MASTER within the master-down interval of a start is an election at start, not a takeover', () => {
  const elected = 'elected at start (the peer is absent or has a lower priority)';
  const gone =
    'the peer stopped advertising or gave the addresses up (dead, stopped, drained or unhealthy)';
  /** A transition log from `at state` pairs (priority 150, no drain, checks ok). */
  const log = (...entries: string[]) =>
    parseTransitions(entries.map((e) => `${e} 150 drain=0 check=ok`).join('\n'));
  // keepalived starts as BACKUP and takes over 3 adverts (plus a skew) later.
  const start = log('1000 BACKUP', '4700 MASTER');
  assert.equal(lastFailover(start, 1000)?.cause, elected);
  // With 5 s adverts the same 3.7 s is still the start; 60 s later it is the peer going away.
  assert.equal(lastFailover(start, 5000)?.cause, elected);
  assert.equal(lastFailover(log('1000 BACKUP', '61000 MASTER'), 1000)?.cause, gone);
  // After a restart of keepalived (STOP, then BACKUP again), as after the first start.
  const restart = log('1000 BACKUP', '5000 MASTER', '90000 STOP', '95000 BACKUP', '98600 MASTER');
  assert.equal(lastFailover(restart, 1000)?.cause, elected);
  // A standby that saw the peer's failback and later took over is a takeover.
  const failback = log('1000 BACKUP', '4600 MASTER', '30000 BACKUP', '32000 MASTER');
  assert.equal(lastFailover(failback, 1000)?.cause, gone);
});
