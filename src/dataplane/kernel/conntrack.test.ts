import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConntrackCli, parseConntrackList } from './conntrack.js';
import type { CommandRunner } from '../../platform/command-runner.js';
import { ReturnPathDetector } from './return-path.js';

// conntrack -L output as conntrack-tools 1.4.7 prints it (default and -o extended).
const LIST = [
  'udp      17 28 src=198.18.1.2 dst=198.19.0.1 sport=40001 dport=500 [UNREPLIED] src=198.18.11.2 dst=198.18.1.2 sport=500 dport=40001 mark=0 use=1',
  'ipv4     2 udp      17 118 src=198.18.1.3 dst=198.19.0.1 sport=4500 dport=4500 src=198.18.12.2 dst=198.18.1.3 sport=4500 dport=4500 [ASSURED] mark=0 use=1',
  'udp      17 25 src=2001:db8:1::2 dst=2001:db8:ff::1 sport=5000 dport=500 src=2001:db8:11::2 dst=2001:db8:1::2 sport=500 dport=5000 mark=0 use=1',
  'garbage line',
  '',
].join('\n');

test('parseConntrackList: original and reply tuples, flags, timeout; bad lines skipped', () => {
  const e = parseConntrackList(LIST);
  assert.equal(e.length, 3);
  assert.deepEqual(e[0], {
    original: { src: '198.18.1.2', dst: '198.19.0.1', sport: 40001, dport: 500 },
    reply: { src: '198.18.11.2', dst: '198.18.1.2', sport: 500, dport: 40001 },
    isUnreplied: true,
    isAssured: false,
    timeout: 28,
  });
  assert.equal(e[1]?.reply.src, '198.18.12.2');
  assert.equal(e[1]?.isAssured, true);
  assert.equal(e[1]?.timeout, 118);
  assert.equal(e[2]?.reply.src, '2001:db8:11::2');
  assert.equal(e[2]?.isUnreplied, false);
});

test('deleteBackendFlows: "0 flow entries" with exit 1 is success; other failures are reported', async () => {
  const calls: string[][] = [];
  let answer: Awaited<ReturnType<CommandRunner>> = {
    ok: false,
    code: 1,
    stdout: '',
    stderr: 'conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n',
    message: 'x',
  };
  const runner: CommandRunner = async (cmd, args) => {
    calls.push([cmd, ...args]);
    return answer;
  };
  const ct = new ConntrackCli(runner);
  assert.deepEqual(await ct.deleteBackendFlows('198.19.0.1', '198.18.11.2', 4), {
    ok: true,
    value: 0,
  });
  assert.deepEqual(calls[0], [
    'conntrack',
    '-D',
    '-f',
    'ipv4',
    '-p',
    'udp',
    '--orig-dst',
    '198.19.0.1',
    '--reply-src',
    '198.18.11.2',
  ]);
  answer = {
    ok: true,
    stdout: '',
    stderr: 'conntrack v1.4.7 (conntrack-tools): 7 flow entries have been deleted.\n',
  };
  assert.deepEqual(await ct.deleteBackendFlows('2001:db8::1', '2001:db8::2', 6), {
    ok: true,
    value: 7,
  });
  answer = { ok: false, code: 'ENOENT', stdout: '', stderr: '', message: 'spawn conntrack ENOENT' };
  assert.equal((await ct.deleteBackendFlows('198.19.0.1', '198.18.11.2', 4)).ok, false);
});

test('return path: flagged when others reply, or after consecutive scans when nobody does', () => {
  const backends = [
    { name: 'a', address: '198.18.11.2', state: 'up' },
    { name: 'b', address: '198.18.12.2', state: 'up' },
    { name: 'c', address: '198.18.13.2', state: 'down' },
  ];
  const flow = (server: string, port: number, isUnreplied: boolean) =>
    parseConntrackList(
      `udp 17 30 src=198.18.1.2 dst=198.19.0.1 sport=${port} dport=500 ${isUnreplied ? '[UNREPLIED] ' : ''}src=${server} dst=198.18.1.2 sport=500 dport=${port} mark=0 use=1`,
    )[0]!;
  const d = new ReturnPathDetector({ minUnreplied: 3, consecutive: 2 });
  const bUnreplied = [1, 2, 3].map((p) => flow('198.18.12.2', p, true));
  const cUnreplied = [4, 5, 6].map((p) => flow('198.18.13.2', p, true));
  // a replies: b is flagged at once; c is down (its monitor already says why): not flagged.
  assert.deepEqual(
    d.observe([flow('198.18.11.2', 9, false), ...bUnreplied, ...cUnreplied], backends).missing,
    ['b'],
  );
  // Two unreplied flows are not a verdict.
  assert.deepEqual(
    new ReturnPathDetector().observe(
      [flow('198.18.11.2', 9, false), ...bUnreplied.slice(1)],
      backends,
    ).missing,
    [],
  );
  // Nobody replies: needs two scans in a row.
  const d2 = new ReturnPathDetector({ consecutive: 2 });
  const all = [...bUnreplied, ...[7, 8, 9].map((p) => flow('198.18.11.2', p, true))];
  assert.deepEqual(d2.observe(all, backends).missing, []);
  assert.deepEqual(d2.observe(all, backends).missing, ['a', 'b']);
  // A reply clears it.
  assert.deepEqual(
    d2.observe([flow('198.18.11.2', 7, false), flow('198.18.12.2', 1, false)], backends).missing,
    [],
  );
});
