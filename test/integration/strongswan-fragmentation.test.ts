/**
 * A large, IP-fragmented IKE_AUTH through `vpnlb run`: certificate authentication with a long
 * CA chain and IKE fragmentation off (RFC 7383 not used), so each IKE_AUTH is several IP
 * fragments. The balancer's conntrack reassembles them before the NAT hook reads the SPI
 * (DESIGN §4); the servers must receive the whole message and the tunnel must carry ping.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { canUseConntrack } from '../../lab/netns.js';
import { hasFile, requireOrSkip } from '../../lab/requirements.js';
import { canUseStrongswan } from '../../lab/strongswan/charon.js';
import { IkeLab } from '../../lab/topology-ike.js';
import { traceClientFlows } from '../../lab/scenarios/observe.js';
import { LabVpnlb } from '../../lab/scenarios/vpnlb-in-namespace.js';

const skip = requireOrSkip(
  'fragmented IKE_AUTH test',
  canUseConntrack(),
  canUseStrongswan(),
  hasFile('/usr/bin/pki', 'strongswan-pki'),
);

describe('IP-fragmented IKE_AUTH (certificates, IKE fragmentation off)', {
  skip,
  timeout: 120_000,
}, () => {
  let lab: IkeLab;
  let vpnlb: LabVpnlb | undefined;
  before(async () => {
    lab = await IkeLab.create({ label: 'sswf', servers: 2, clients: 3, auth: 'cert' });
    await lab.startServers();
    await lab.startClients();
    vpnlb = new LabVpnlb(lab, { nat: 'transparent' });
    await vpnlb.start();
  });
  after(async () => {
    await vpnlb?.stop().catch(() => undefined);
    await lab?.destroy();
  });

  it('gets through whole, on the server that got the IKE_SA_INIT', async () => {
    assert.ok(
      lab.pki!.chainBytes > 3000,
      `chain only ${lab.pki!.chainBytes} bytes: IKE_AUTH would not need IP fragmentation`,
    );
    for (const c of lab.clients) {
      const r = await c.charon!.initiate('home', 20);
      assert.ok(r.ok, `${c.name}: ${r.output.slice(-800)}`);
      const p = await lab.ping(c, 2, 0.1);
      assert.equal(p.received, 2, `${c.name}: ping through the tunnel`);
    }
    // The servers received IKE_AUTH messages larger than the 1500-byte MTU in one piece.
    let largest = 0;
    for (const s of lab.servers) {
      const log = readFileSync(join(s.charon!.dir, 'charon.log'), 'utf8');
      for (const m of log.matchAll(/received packet: from \S+ to \S+\[4500\] \((\d+) bytes\)/g))
        largest = Math.max(largest, Number(m[1]));
    }
    assert.ok(largest > 3000, `largest IKE message a server received: ${largest} bytes`);
    for (const f of await traceClientFlows(lab, lab.clients))
      assert.equal(f.split, false, `${f.client}: 500 and 4500 on different servers`);
  });
});
