import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CommandRunner } from '../platform/command-runner.js';
import { BirdControl, parseProtocols } from './bird-control.js';
import { evaluateAnnouncements } from './announce-health.js';

// Recorded from BIRD 2.0.12 (Debian 12) in a namespace.
const SHOW_PROTOCOLS = `BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     11:21:51.007  
bfd1       BFD        ---        up     11:21:51.007  
vip1       Static     master4    down   11:21:51.007  
vip2       Static     master6    up     2026-12-01 11:21:55  
peer_edge  BGP        ---        up     11:21:55.281  Established   
peer_edge_v6 BGP        ---        start  11:21:51.007  Active        Socket: Connection refused
`;

test('show protocols: every row, with a two-token date and an error in Info', () => {
  const rows = parseProtocols(SHOW_PROTOCOLS);
  assert.deepEqual(
    rows.map((r) => [r.name, r.proto, r.state, r.info]),
    [
      ['device1', 'Device', 'up', ''],
      ['bfd1', 'BFD', 'up', ''],
      ['vip1', 'Static', 'down', ''],
      ['vip2', 'Static', 'up', ''],
      ['peer_edge', 'BGP', 'up', 'Established'],
      ['peer_edge_v6', 'BGP', 'start', 'Active        Socket: Connection refused'],
    ],
  );
  assert.equal(rows[3]!.since, '2026-12-01 11:21:55');
});

test('enable/disable: "already" is success, anything else an error; birdc failure is an error', async () => {
  const answers: Record<string, { ok: boolean; stdout: string }> = {
    enable: { ok: true, stdout: 'BIRD 2.0.12 ready.\nvip1: already enabled\n' },
    disable: { ok: true, stdout: 'BIRD 2.0.12 ready.\nvip1: disabled\n' },
  };
  const calls: string[] = [];
  const run: CommandRunner = async (_cmd, args) => {
    calls.push(args.join(' '));
    const a = answers[args[2]!];
    if (!a)
      return {
        ok: false,
        code: 1,
        stdout: '',
        stderr: 'Unable to connect to server control socket',
        message: 'Unable to connect to server control socket',
      };
    return { ok: true, stdout: a.stdout, stderr: '' };
  };
  const bird = new BirdControl(run, '/run/x/bird.ctl');
  await bird.setEnabled('vip1', true);
  await bird.setEnabled('vip1', false);
  assert.deepEqual(calls, ['-s /run/x/bird.ctl enable vip1', '-s /run/x/bird.ctl disable vip1']);
  answers.enable = { ok: true, stdout: 'BIRD 2.0.12 ready.\nvip9: unknown protocol\n' };
  await assert.rejects(bird.setEnabled('vip1', true), {
    code: 'VPNLB_BGP_START',
    message: /unexpected answer/,
  });
  await assert.rejects(bird.protocols(), { code: 'VPNLB_BGP_START', message: /Unable to connect/ });
});

test('announcements: drained, no answer, stale plane, no server, and ok — per address', () => {
  const announce = [
    {
      address: '198.19.0.1',
      family: 4 as const,
      prefix: '198.19.0.1/32',
      services: ['ike4', 'sstp4'],
    },
    {
      address: '2001:db8:ffff::1',
      family: 6 as const,
      prefix: '2001:db8:ffff::1/128',
      services: ['ike6'],
    },
  ];
  const up = (name: string) => ({
    name,
    dataplaneInSync: true,
    backends: [
      { name: 'a', state: 'down' },
      { name: 'b', state: 'up' },
    ],
  });
  const none = (name: string) => ({
    name,
    dataplaneInSync: true,
    backends: [{ name: 'a', state: 'down' }],
  });
  const reasons = (
    status: Parameters<typeof evaluateAnnouncements>[0]['status'],
    drained = false,
    error?: string,
  ) =>
    evaluateAnnouncements({ announce, status, drained, ...(error ? { error } : {}) }).map(
      (v) => `${v.ok ? 'announce' : 'withdraw'}: ${v.reason}`,
    );
  assert.deepEqual(reasons({ services: [up('ike4'), none('sstp4'), up('ike6')] }), [
    'announce: ok',
    'announce: ok',
  ]);
  assert.deepEqual(reasons({ services: [none('ike4'), none('sstp4'), up('ike6')] }), [
    'withdraw: no usable server: ike4, sstp4',
    'announce: ok',
  ]);
  assert.deepEqual(
    reasons({ services: [up('ike4'), up('sstp4'), { ...up('ike6'), dataplaneInSync: false }] }),
    ['announce: ok', 'withdraw: data plane not in sync: ike6'],
  );
  assert.deepEqual(reasons({ services: [up('ike4'), up('ike6')] }), [
    'withdraw: not served by this vpnlb: sstp4',
    'announce: ok',
  ]);
  assert.deepEqual(reasons(undefined, false, 'ECONNREFUSED'), [
    'withdraw: vpnlb does not answer: ECONNREFUSED',
    'withdraw: vpnlb does not answer: ECONNREFUSED',
  ]);
  assert.deepEqual(reasons({ services: [up('ike4'), up('sstp4'), up('ike6')] }, true), [
    'withdraw: node drained',
    'withdraw: node drained',
  ]);
  const all = [up('ike4'), up('sstp4'), up('ike6')];
  assert.deepEqual(reasons({ services: all, bgp: { flowSync: { ready: false } } }), [
    "withdraw: the other nodes' flow state is not pulled yet",
    "withdraw: the other nodes' flow state is not pulled yet",
  ]);
  assert.deepEqual(reasons({ services: all, bgp: { flowSync: { ready: true } } }), [
    'announce: ok',
    'announce: ok',
  ]);
});
