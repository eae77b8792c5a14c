import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  describeMask,
  explainPermissionError,
  helperReceives,
  holds,
  listenError,
  missingCapabilityMessage,
  parseProcStatus,
  readProcessCapabilities,
} from './capabilities.js';

// /proc/<pid>/status of a process started by `setpriv --reuid 65534 --inh-caps +net_admin,+net_raw,+net_bind_service
// --ambient-caps +net_admin,+net_raw,+net_bind_service --bounding-set -all,+net_admin,+net_raw,+net_bind_service`.
const UNPRIVILEGED = `Name:\tnode
Uid:\t65534\t65534\t65534\t65534
Gid:\t65534\t65534\t65534\t65534
CapInh:\t0000000000003400
CapPrm:\t0000000000003400
CapEff:\t0000000000003400
CapBnd:\t0000000000003400
CapAmb:\t0000000000003400
NoNewPrivs:\t1
`;
const ROOT = `Uid:\t0\t0\t0\t0
CapInh:\t0000000000000000
CapPrm:\t000001ffffffffff
CapEff:\t000001ffffffffff
CapBnd:\t000001ffffffffff
CapAmb:\t0000000000000000
`;

test('parses the capability sets and the uid of /proc/<pid>/status', () => {
  const caps = parseProcStatus(UNPRIVILEGED);
  assert.ok(caps);
  assert.equal(caps.uid, 65534);
  assert.equal(caps.ambient, 0x3400n);
  assert.equal(describeMask(caps.effective), 'CAP_NET_BIND_SERVICE,CAP_NET_ADMIN,CAP_NET_RAW');
  assert.equal(
    parseProcStatus('Name:\tnode\nUid:\t0\t0\t0\t0\n'),
    undefined,
    'no Cap lines: unknown, not "no capabilities"',
  );
  assert.equal(
    parseProcStatus(ROOT.replace('CapAmb:\t0000000000000000\n', '')),
    undefined,
    'a kernel without ambient sets',
  );
});

test('helpers get the ambient set from an unprivileged vpnlb, the bounding set from root', () => {
  const user = parseProcStatus(UNPRIVILEGED)!;
  assert.ok(helperReceives(user, 'CAP_NET_ADMIN'));
  const noAmbient = parseProcStatus(
    UNPRIVILEGED.replace('CapAmb:\t0000000000003400', 'CapAmb:\t0000000000002400'),
  )!;
  assert.ok(holds(noAmbient, 'CAP_NET_ADMIN'), 'vpnlb itself still holds it');
  assert.ok(!helperReceives(noAmbient, 'CAP_NET_ADMIN'), 'but nft would run without it');
  const root = parseProcStatus(ROOT)!;
  assert.ok(helperReceives(root, 'CAP_NET_ADMIN'));
  const rootWithoutNetAdmin = parseProcStatus(
    ROOT.replace('CapBnd:\t000001ffffffffff', 'CapBnd:\t000001ffffffefff'),
  )!;
  assert.ok(!helperReceives(rootWithoutNetAdmin, 'CAP_NET_ADMIN'));
});

test('this process: the sets are readable on Linux', () => {
  const caps = readProcessCapabilities();
  assert.ok(caps, 'Linux has CapAmb since 4.3');
  assert.equal(caps.uid, process.getuid?.());
});

test('permission errors name the capability; other errors stay as they were', () => {
  const nft = explainPermissionError(
    'Error: Could not process rule: Operation not permitted',
    'CAP_NET_ADMIN',
  );
  assert.match(
    nft,
    /^Error: Could not process rule: Operation not permitted \(vpnlb needs CAP_NET_ADMIN to program nftables/,
  );
  assert.match(nft, /AmbientCapabilities=CAP_NET_ADMIN/);
  assert.equal(
    explainPermissionError('Error: syntax error, unexpected junk', 'CAP_NET_ADMIN'),
    'Error: syntax error, unexpected junk',
  );
  assert.match(
    missingCapabilityMessage('CAP_NET_RAW', 'x'),
    /^vpnlb needs CAP_NET_RAW to send ICMP echo requests/,
  );
});

test('a listener refused on a port below 1024 is the missing CAP_NET_BIND_SERVICE', () => {
  const eacces = Object.assign(new Error('listen EACCES: permission denied 198.18.1.1:443'), {
    code: 'EACCES',
  });
  const e = listenError('sstp: cannot listen on 198.18.1.1:443', 443, eacces);
  assert.equal(e.code, 'VPNLB_MISSING_CAPABILITY');
  assert.match(
    e.message,
    /^sstp: cannot listen on 198\.18\.1\.1:443: vpnlb needs CAP_NET_BIND_SERVICE/,
  );
  assert.equal(
    listenError('x', 8443, eacces).code,
    'VPNLB_LISTEN',
    'EACCES above 1023 is something else',
  );
  const inUse = Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE' });
  const busy = listenError('ike: cannot listen on UDP 198.18.1.1:500', 500, inUse);
  assert.equal(busy.code, 'VPNLB_LISTEN');
  assert.match(busy.message, /EADDRINUSE/);
});
