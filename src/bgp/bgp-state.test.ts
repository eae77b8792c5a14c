import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatBgpStatus, readBgpStatus, type BgpState } from './bgp-state.js';

const STATE: BgpState = {
  node: 'lb1',
  routerId: '198.18.0.2',
  asn: 65001,
  updatedAt: '2026-12-02T11:00:00.000Z',
  checkInterval: 1000,
  drained: false,
  bird: { running: true, pid: 4242, restarts: 0 },
  announcements: [
    {
      address: '198.19.0.1',
      prefix: '198.19.0.1/32',
      services: ['ike4'],
      announced: true,
      reason: 'ok',
      since: '2026-12-02T10:59:00.000Z',
    },
    {
      address: '2001:db8:ffff::1',
      prefix: '2001:db8:ffff::1/128',
      services: ['ike6'],
      announced: false,
      reason: 'no usable server: ike6',
      since: '2026-12-02T10:59:30.000Z',
    },
  ],
  peers: [
    {
      name: 'edge',
      address: '198.18.0.1',
      asn: 65000,
      state: 'up',
      info: 'Established',
      established: true,
    },
    {
      name: 'edge-v6',
      address: '2001:db8:a::1',
      asn: 65000,
      state: 'start',
      info: 'Active Socket: Connection refused',
      established: false,
    },
  ],
  withdrawals: 1,
  lastChange: null,
};

test('state: running while fresh, stale after five intervals, absent without a file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vpnlb-bgp-state-'));
  try {
    const file = join(dir, 'state.json');
    assert.equal(readBgpStatus(file).supervisor, 'absent');
    writeFileSync(file, JSON.stringify(STATE));
    const at = Date.parse(STATE.updatedAt);
    assert.equal(readBgpStatus(file, at + 4000).supervisor, 'running');
    assert.equal(readBgpStatus(file, at + 5001).supervisor, 'stale');
    writeFileSync(file, '{ half');
    assert.match(JSON.stringify(readBgpStatus(file)), /"supervisor":"absent"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('status lines: announcements with the reason of a withdrawal, peers with their state', () => {
  assert.equal(
    formatBgpStatus({ ...STATE, supervisor: 'running' }),
    [
      'bgp node lb1 (router id 198.18.0.2, AS 65001): 1/2 announced; bird running (pid 4242)',
      '  198.19.0.1/32            announced since 2026-12-02T10:59:00.000Z (ike4)',
      '  2001:db8:ffff::1/128     withdrawn since 2026-12-02T10:59:30.000Z: no usable server: ike6 (ike6)',
      '  peer edge 198.18.0.1 AS 65000: established',
      '  peer edge-v6 2001:db8:a::1 AS 65000: start Active Socket: Connection refused',
    ].join('\n'),
  );
  assert.match(
    formatBgpStatus({ ...STATE, supervisor: 'stale' }),
    /supervisor silent since 2026-12-02T11:00:00\.000Z/,
  );
});
