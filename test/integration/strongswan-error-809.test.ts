/**
 * Error-809 regression, end to end through the CLI: `vpnlb lab --json` runs real strongSwan
 * servers (default per-address half-open limit of 5) and clients, with some clients stalled
 * half-open (IKE_AUTH on 4500 dropped), behind vpnlb `nat: full` and then transparent mode.
 * Full NAT must leave most good clients unconnected; transparent must connect every one, and
 * the servers must see every client's own address.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { canUseConntrack } from '../../lab/netns.js';
import { requireOrSkip } from '../../lab/requirements.js';
import { canUseStrongswan } from '../../lab/strongswan/charon.js';
import { vpnlbArgv } from '../../lab/vpnlb-process.js';
import type { ShowcaseReport } from '../../lab/scenarios/showcase.js';

const skip = requireOrSkip('error-809 regression', canUseConntrack(), canUseStrongswan());

describe('error-809 regression (vpnlb lab --json)', { skip, timeout: 150_000 }, () => {
  it('full NAT starves good clients behind stalled half-open ones; transparent connects all', async () => {
    const [node, ...args] = vpnlbArgv([
      'lab',
      '--json',
      '--part',
      'showcase',
      '--clients',
      '10',
      '--stalled',
      '4',
    ]);
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(
        node!,
        args,
        { timeout: 140_000, maxBuffer: 16 * 1024 * 1024 },
        (err, out, errOut) =>
          err
            ? reject(new Error(`vpnlb lab failed: ${err.message}\n${errOut.slice(-3000)}`))
            : resolve(out),
      );
    });
    const r = (JSON.parse(stdout) as { showcase: ShowcaseReport }).showcase;
    const f = r.fullNat;
    const t = r.transparent;
    assert.equal(f.clients, 10);
    assert.equal(t.clients, 10);
    // Full NAT: the servers see only the balancer (one address per server link at most).
    assert.ok(
      f.clientAddressesSeenByServers <= r.servers,
      `full NAT: servers saw ${f.clientAddressesSeenByServers} addresses`,
    );
    assert.ok(
      f.blockedIkeSaInits > 0,
      'full NAT: no IKE_SA_INIT was refused for the half-open limit',
    );
    // The premise: the stalled clients' SAs filled every server's limit for the shared address.
    for (const [server, n] of Object.entries(f.halfOpenSasPerServer))
      assert.ok(
        n >= r.halfOpenLimitPerAddress,
        `full NAT: ${server} held ${n} half-open SAs, under the limit of ${r.halfOpenLimitPerAddress}`,
      );
    assert.ok(
      f.connected <= f.clients / 2,
      `full NAT connected ${f.connected} of ${f.clients}: the half-open limit did not bite`,
    );
    // Transparent: everyone, each with its own address (good and stalled clients alike).
    assert.equal(t.connected, t.clients, `transparent connected ${t.connected} of ${t.clients}`);
    assert.equal(t.pingedThroughTunnel, t.connected);
    assert.equal(t.clientAddressesSeenByServers, t.clients + t.stalledClients);
    assert.equal(t.splitHandshakes, 0);
    assert.equal(f.splitHandshakes, 0);
    assert.ok(
      f.seconds < 60 && t.seconds < 60,
      `a mode took too long: ${f.seconds} s / ${t.seconds} s`,
    );
  });
});
