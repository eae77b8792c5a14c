/**
 * The `ikev2` monitor against a real strongSwan responder (root, network namespaces):
 * - up while charon serves (NO_PROPOSAL_CHOSEN; the INVALID_KE_PAYLOAD variant too);
 * - after 1000 probes (and 200 of the other variant) the responder holds no half-open or
 *   established IKE_SA from the prober's address, and a real client *from that same address*
 *   still connects — with `block_threshold = 5`, five leftover half-open SAs would block it;
 * - down once charon is stopped while the host still answers ping (what an icmp monitor misses).
 *
 * Topology: namespace `lb` (198.18.0.1, 2001:db8::1: the balancer, where the probes and the real
 * client run) ── veth ── namespace `srv` (198.18.0.2, 2001:db8::2: charon).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canUseNamespaces, Topology } from '../../lab/netns.js';
import { requireOrSkip } from '../../lab/requirements.js';
import { canUseStrongswan, Charon } from '../../lab/strongswan/charon.js';
import { renderInitiatorConf, renderResponderConf } from '../../lab/strongswan/swanctl-conf.js';
import { vpnlbArgv } from '../../lab/vpnlb-process.js';

const skip =
  requireOrSkip('health-strongswan', canUseNamespaces(), canUseStrongswan()) || undefined;

const LB = '198.18.0.1';
const SRV = '198.18.0.2';
const SRV6 = '2001:db8::2';
const PSK = { kind: 'psk' as const, secret: 'health-lab-secret' };

interface ProbeSummary {
  ok: number;
  failed: number;
  details: Record<string, number>;
  latencyMs: { min: number; median: number; max: number };
}

describe('ikev2 monitor against real strongSwan', { skip }, () => {
  let topo: Topology;
  let dir: string;
  let server: Charon;
  let client: Charon;

  /** Runs `vpnlb probe ... --json` inside the balancer namespace (exit code 1 = some probe failed). */
  async function probe(args: string[]): Promise<ProbeSummary> {
    const argv = ['netns', 'exec', topo.ns('lb').name, ...vpnlbArgv(['probe', ...args, '--json'])];
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile('ip', argv, { maxBuffer: 1 << 24 }, (err, out, stderr) => {
        if (err && (err as { code?: unknown }).code !== 1)
          reject(new Error(`vpnlb probe ${args.join(' ')}: ${stderr || err.message}`));
        else resolve(out);
      });
    });
    return JSON.parse(stdout.trim().split('\n').pop()!) as ProbeSummary;
  }

  async function sasFromLb(): Promise<string[]> {
    return (await server.listSas())
      .filter((s) => s.remoteHost === LB)
      .map((s) => `${s.state} ${s.initiatorSpi}`);
  }

  before(async () => {
    topo = Topology.create('hlth');
    dir = mkdtempSync(join(tmpdir(), 'vpnlb-health-sw-'));
    await topo.addNamespace('lb');
    await topo.addNamespace('srv');
    await topo.link({
      a: 'lb',
      b: 'srv',
      aAddresses: [`${LB}/24`, '2001:db8::1/64'],
      bAddresses: [`${SRV}/24`, `${SRV6}/64`],
    });
    // The tunnel's far end lives on the server; default routes let charon install its policies.
    await topo.ns('srv').exec('ip', ['addr', 'add', '198.19.100.1/32', 'dev', 'lo']);
    await topo.route('srv', 'default', LB);
    await topo.route('lb', 'default', SRV);
    server = await Charon.start({
      ns: topo.ns('srv'),
      dir: join(dir, 'srv'),
      blockThreshold: 5,
      halfOpenTimeout: 30,
      swanctlConf: renderResponderConf({
        id: 'server.lab',
        auth: PSK,
        pools: ['198.19.200.0/24'],
        localTs: ['198.19.100.1/32'],
      }),
    });
    client = await Charon.start({
      ns: topo.ns('lb'),
      dir: join(dir, 'lb'),
      swanctlConf: renderInitiatorConf({
        id: 'client.lab',
        auth: PSK,
        remote: SRV,
        remoteId: 'server.lab',
        remoteTs: ['198.19.100.1/32'],
        vips: ['0.0.0.0'],
      }),
    });
  });

  after(async () => {
    await client?.stop().catch(() => undefined);
    await server?.stop().catch(() => undefined);
    await topo?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('is up while charon serves (IPv4 and IPv6), answered with NO_PROPOSAL_CHOSEN', async () => {
    for (const addr of [SRV, SRV6]) {
      const r = await probe(['ikev2', addr]);
      assert.equal(r.ok, 1, JSON.stringify(r.details));
      assert.deepEqual(Object.keys(r.details), ['IKE_SA_INIT answered with NO_PROPOSAL_CHOSEN']);
    }
    const ke = await probe(['ikev2', SRV, '--ikev2-variant', 'mismatched-ke']);
    assert.equal(ke.ok, 1, JSON.stringify(ke.details));
    assert.deepEqual(Object.keys(ke.details), ['IKE_SA_INIT answered with INVALID_KE_PAYLOAD']);
  });

  it('1000 probes leave no IKE_SA from the prober, and a real client from the same address connects', async () => {
    // Sample the responder's SAs while the probes run: a half-open SA would show up here.
    let sampling = true;
    const seenDuring: string[] = [];
    const sampler = (async () => {
      while (sampling) {
        seenDuring.push(...(await sasFromLb()));
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const t0 = Date.now();
    // Sequential, as the health checker probes one server (never two probes at once).
    const main = await probe(['ikev2', SRV, '--count', '1000', '--timeout', '2000']);
    const t1 = Date.now();
    // The other stateless design, in parallel bursts.
    const ke = await probe([
      'ikev2',
      SRV,
      '--count',
      '200',
      '--parallel',
      '4',
      '--ikev2-variant',
      'mismatched-ke',
    ]);
    sampling = false;
    await sampler;
    console.log(
      `# 1000 sequential probes in ${t1 - t0} ms (median ${main.latencyMs.median} ms, max ${main.latencyMs.max} ms): ${JSON.stringify(main.details)}`,
    );
    console.log(`# 200 mismatched-KE probes, 4 in parallel: ${JSON.stringify(ke.details)}`);
    assert.equal(main.ok, 1000, JSON.stringify(main.details));
    // Every answer is stateless: NO_PROPOSAL_CHOSEN, or a COOKIE challenge (RFC 7296 §2.6),
    // itself stateless. Back to back, probes can outrun charon's clean-up of the IKE_SA it
    // creates and destroys for each one; on a busy machine its per-address cookie threshold
    // then trips and it answers with cookies. A monitor probes a server every few seconds, so
    // in service the answer is NO_PROPOSAL_CHOSEN; either way nothing is left behind (below).
    const stateless = [
      'IKE_SA_INIT answered with NO_PROPOSAL_CHOSEN',
      'IKE_SA_INIT answered with a COOKIE challenge (the server is defending against half-open SAs)',
    ];
    assert.ok(
      Object.keys(main.details).every((d) => stateless.includes(d)),
      JSON.stringify(main.details),
    );
    assert.equal(ke.ok, 200, JSON.stringify(ke.details));
    assert.deepEqual(seenDuring, [], 'no SA from the prober, even while probing');
    assert.deepEqual(
      await sasFromLb(),
      [],
      'no half-open or established SA from the prober after 1000 probes',
    );
    const stats = await server.swanctl(['--stats']);
    assert.match(stats, /IKE_SAs: 0 total, 0 half-open/, stats);

    const conn = await client.initiate('home', 15);
    if (!conn.ok)
      console.log(
        readFileSync(join(dir, 'srv/charon.log'), 'utf8').split('\n').slice(-20).join('\n'),
      );
    assert.equal(conn.ok, true, conn.output);
    const sas = await server.listSas();
    assert.deepEqual(
      sas.map((s) => [s.remoteHost, s.state]),
      [[LB, 'ESTABLISHED']],
      'exactly the real client',
    );
    await client.terminate('home');
  });

  it('is down once charon stops while the host still answers ping (icmp says up)', async () => {
    await server.stop();
    const icmp = await probe(['icmp', SRV]);
    assert.equal(icmp.ok, 1, `the host answers ping: ${JSON.stringify(icmp.details)}`);
    const ike = await probe(['ikev2', SRV, '--timeout', '1000']);
    assert.equal(ike.ok, 0);
    console.log(
      `# charon stopped: icmp ${JSON.stringify(icmp.details)}; ikev2 ${JSON.stringify(ike.details)}`,
    );
    assert.match(Object.keys(ike.details)[0]!, /ECONNREFUSED|no answer within/);
  });
});
