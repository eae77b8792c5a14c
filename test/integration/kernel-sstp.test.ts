/**
 * SSTP passthrough on the kernel data plane, end to end (root): the real `vpnlb run` programs
 * nftables in a balancer namespace, the real `sstpc` (test/support/sstpc-client.ts) connects from a client
 * namespace to the virtual IP over IPv4 and IPv6, and simulated RRAS servers in two server
 * namespaces (src/sim/rras/sstp-endpoint-main.ts) record what they see.
 *
 * Checked: each tunnel reaches PPP negotiation on the server decide() names for the client's
 * address; the server sees the client's own address (not the balancer's); a restart of vpnlb
 * with the kernel state kept leaves the established tunnels working (a new PPP exchange after
 * the restart is answered on the same connection); disabling a server deletes its connections
 * (sstpc's connection is reset and it exits); a normal stop removes the tables.
 *
 * Topology (routed veths, lab/netns.ts): cl (198.18.1.2, 2001:db8:1::2) ↔ lb ↔ s1, s2
 * (198.18.1N.2, 2001:db8:1N::2; default route via lb, so replies to clients return through it).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Topology, canUseConntrack, run, type Namespace } from '../../lab/netns.js';
import { hasFile, requireOrSkip } from '../../lab/requirements.js';
import { generateTestCertificate, type TestCertificate } from '../../src/sim/rras/sstp-certs.js';
import type { SstpEndpointReport } from '../../src/sim/rras/sstp-endpoint.js';
import { startSstpcUntilCallSetup, until, type SstpcClient } from '../support/sstpc-client.js';
import { labScriptArgv, vpnlbArgv } from '../../lab/vpnlb-process.js';
import { loadConfigText } from '../../src/config/load-config.js';
import { Controller } from '../../src/control/controller.js';
import { decide } from '../../src/control/decide.js';
import type { ServiceSnapshot } from '../../src/control/snapshot.js';
import { lcpConfigureRequest } from '../../src/protocol/sstp/ppp-hdlc.js';

const skip = requireOrSkip(
  'kernel SSTP passthrough',
  canUseConntrack(),
  hasFile('/usr/sbin/sstpc', 'sstp-client'),
);

const VIP4 = '198.19.0.1';
const VIP6 = '2001:db8:ff::1';
const CLIENT4 = '198.18.1.2';
const CLIENT6 = '2001:db8:1::2';
const SERVERS = [1, 2].map((n) => ({
  name: `s${n}`,
  v4: `198.18.1${n}.2`,
  v6: `2001:db8:1${n}::2`,
}));
const LCP_FRAME = Buffer.from(lcpConfigureRequest(1, 0x7670_6e6c)).toString('hex');

const CONFIG = `
log: { level: info }
admin: { listen: 127.0.0.1, port: 0, tokenFile: admin.token, socket: admin.sock }
pools:
  farm4:
    backends:
${SERVERS.map((s) => `      - { name: ${s.name}, address: ${s.v4} }`).join('\n')}
  farm6:
    backends:
${SERVERS.map((s) => `      - { name: ${s.name}v6, address: "${s.v6}" }`).join('\n')}
services:
  sstp:
    - { name: sstp4, virtualIp: ${VIP4}, pool: farm4, dataplane: kernel, hashSeed: 305419896 }
    - { name: sstp6, virtualIp: "${VIP6}", pool: farm6, dataplane: kernel, hashSeed: 305419896 }
`;

let topo: Topology;
let lb: Namespace;
let cl: Namespace;
let dir: string;
let cert: TestCertificate;
const reports = new Map<string, SstpEndpointReport>();
const procs: ChildProcess[] = [];

/** Starts one simulated server in its namespace, listening on [::]:443 (IPv4 clients appear as ::ffff:a.b.c.d). */
async function startSim(ns: Namespace, name: string): Promise<void> {
  const [node, ...args] = labScriptArgv(
    new URL(
      `../../src/sim/rras/sstp-endpoint-main${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`,
      import.meta.url,
    ),
    [
      JSON.stringify({
        name,
        host: '::',
        tlsPort: 443,
        certPath: cert.certPath,
        keyPath: cert.keyPath,
      }),
    ],
  );
  const p = ns.spawn(node as string, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  procs.push(p);
  let buf = '';
  let err = '';
  p.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start: ${err}`)), 15_000);
    p.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const j = JSON.parse(line) as SstpEndpointReport & { ready?: boolean };
        if (j.ready) {
          clearTimeout(timer);
          resolve();
        } else reports.set(name, j);
      }
    });
    p.once('exit', (code) => reject(new Error(`${name} exited with ${code}: ${err}`)));
  });
}

interface VpnlbProc {
  readonly proc: ChildProcess;
  log(): string;
  stop(): Promise<void>;
}

/** Starts `vpnlb run` in the balancer namespace (a 65537-slot transaction per table: minutes on a loaded machine). */
async function startVpnlb(configPath: string, keepState = false): Promise<VpnlbProc> {
  const [node, ...args] = vpnlbArgv([
    'run',
    '--config',
    configPath,
    ...(keepState ? ['--keep-state'] : []),
  ]);
  const proc = lb.spawn(node as string, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  procs.push(proc);
  let log = '';
  proc.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`vpnlb did not start: ${log}`)), 300_000);
    const check = () => {
      if (!log.includes('vpnlb running')) return;
      clearTimeout(timer);
      resolve();
    };
    proc.stdout?.on('data', check);
    proc.stderr?.on('data', check);
    proc.once('exit', (code) => reject(new Error(`vpnlb exited with ${code}: ${log}`)));
  });
  return {
    proc,
    log: () => log,
    stop: async () => {
      if (proc.exitCode !== null || !proc.pid) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

/** The server decide() names for a client address, from the same configuration. */
function expectedServer(service: string, client: string): string {
  const controller = new Controller(loadConfigText(CONFIG));
  return decide(controller.service(service) as ServiceSnapshot, {
    address: client,
  }).backend?.name.replace(/v6$/, '') as string;
}

const plain = (a: string) => a.replace(/^::ffff:/, '');
const connectionsFrom = (server: string, client: string) =>
  (reports.get(server)?.connections ?? []).filter((c) => plain(c.peerAddress) === client);

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'vpnlb-ksstp-'));
  cert = generateTestCertificate();
  topo = Topology.create('ksstp');
  lb = await topo.addNamespace('lb');
  cl = await topo.addNamespace('cl');
  await topo.link({
    a: 'cl',
    b: 'lb',
    aAddresses: [`${CLIENT4}/24`, `${CLIENT6}/64`],
    bAddresses: ['198.18.1.1/24', '2001:db8:1::1/64'],
  });
  await topo.route('cl', 'default', '198.18.1.1');
  await topo.route('cl', 'default', '2001:db8:1::1');
  for (const [i, s] of SERVERS.entries()) {
    const ns = await topo.addNamespace(s.name);
    await topo.link({
      a: s.name,
      b: 'lb',
      aAddresses: [`${s.v4}/24`, `${s.v6}/64`],
      bAddresses: [`198.18.1${i + 1}.1/24`, `2001:db8:1${i + 1}::1/64`],
    });
    await topo.route(s.name, 'default', `198.18.1${i + 1}.1`);
    await topo.route(s.name, 'default', `2001:db8:1${i + 1}::1`);
    await startSim(ns, s.name);
  }
  writeFileSync(join(dir, 'vpnlb.yaml'), CONFIG);
});

after(async () => {
  for (const p of procs) if (p.exitCode === null && p.pid) p.kill('SIGKILL');
  await topo?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
  cert?.dispose();
});

test('real sstpc over IPv4 and IPv6 through the kernel plane: placement by source address, servers see the client, hitless restart, disable resets, stop cleans up', {
  skip,
}, async () => {
  const configPath = join(dir, 'vpnlb.yaml');
  let vpnlb = await startVpnlb(configPath, true);
  const clients: { c: SstpcClient; client: string; server: string }[] = [];
  try {
    const tables = await lb.exec('nft', ['list', 'tables']);
    assert.match(tables, /table ip vpnlb_sstp/);
    assert.match(tables, /table ip6 vpnlb_sstp/);

    for (const [service, vip, client] of [
      ['sstp4', VIP4, CLIENT4],
      ['sstp6', `[${VIP6}]`, CLIENT6],
    ] as const) {
      const server = expectedServer(service, client);
      const c = await startSstpcUntilCallSetup(
        `${vip}:443`,
        cert.certPath,
        `k${service}`,
        dir,
        (cmd, args, o) => cl.spawn(cmd, args, o),
        6, // no latency on this path: sstpc's bug is retried (test/support/sstpc-client.ts)
      );
      procs.push(c.proc);
      clients.push({ c, client, server });
      await until(
        () =>
          connectionsFrom(server, client).some(
            (x) => x.callConnectRequests === 1 && x.pppFrames.length >= 1,
          ),
        `${server} to see ${client}'s Call Connect Request and PPP frame (sstpc: ${c.log().slice(-600)})`,
        15_000,
      );
      const conns = connectionsFrom(server, client);
      assert.equal(
        conns.length,
        1,
        `${server}: one connection from ${client} itself (the client's address, not the balancer's)`,
      );
      assert.equal(conns[0]!.transport, 'tls');
      assert.equal(conns[0]!.pppFrames[0], LCP_FRAME);
      for (const other of SERVERS.filter((s) => s.name !== server))
        assert.equal(
          connectionsFrom(other.name, client).length,
          0,
          `${other.name} got nothing from ${client}`,
        );
      await until(
        () => c.fromServer.includes(2),
        `LCP Configure-Ack back on sstpc's stdout for ${client}`,
      );
    }
    // Every connection the servers saw came from a client address: none from the balancer.
    for (const s of SERVERS)
      for (const c of reports.get(s.name)?.connections ?? [])
        assert.ok(
          [CLIENT4, CLIENT6].includes(plain(c.peerAddress)),
          `${s.name} saw ${c.peerAddress}`,
        );
    const ct = await lb.exec('conntrack', ['-L', '-p', 'tcp', '--orig-dst', VIP4]);
    assert.match(ct, /ESTABLISHED/);

    // Hitless restart: stop with the kernel state kept, start again (adoption), and the
    // established tunnels still carry PPP both ways.
    await vpnlb.stop();
    assert.match(
      await lb.exec('nft', ['list', 'tables']),
      /table ip vpnlb_sstp/,
      'the table outlived the process',
    );
    vpnlb = await startVpnlb(configPath, true);
    assert.match(vpnlb.log(), /adopted the existing nftables table ip vpnlb_sstp/);
    for (const { c, client, server } of clients) {
      const acks = c.fromServer.filter((x) => x === 2).length;
      c.sendLcpRequest(2);
      await until(
        () => c.fromServer.filter((x) => x === 2).length > acks,
        `a Configure-Ack after the restart for ${client}`,
      );
      // The server's report line may trail its answer.
      await until(
        () => (connectionsFrom(server, client)[0]?.pppFrames.length ?? 0) >= 2,
        `${server} to report the second PPP frame`,
      );
      const conns = connectionsFrom(server, client);
      assert.equal(conns.length, 1, 'still the same connection');
      assert.ok(conns[0]!.pppFrames.length >= 2);
      assert.equal(conns[0]!.closed, false);
    }

    // Disable the IPv4 client's server (admin API on the Unix socket, which crosses namespaces):
    // its connection is deleted from conntrack, the client's next segment is placed on the other
    // server, which resets it, and sstpc gives up at once instead of retransmitting for minutes.
    const { c: c4, server: s4 } = clients[0]!;
    const [node, ...args] = vpnlbArgv([
      'backend',
      'disable',
      `farm4/${s4}`,
      '--admin',
      `unix:${join(dir, 'admin.sock')}`,
    ]);
    await run(node as string, args);
    await until(
      () => /deleted 1 conntrack entries of s/.test(vpnlb.log()),
      `vpnlb to delete ${s4}'s connection (log: ${vpnlb.log().slice(-800)})`,
    );
    c4.sendLcpRequest(3);
    await until(
      () => c4.proc.exitCode !== null,
      `sstpc to notice its connection is gone (sstpc: ${c4.log().slice(-600)})`,
      20_000,
    );
    assert.equal(
      connectionsFrom(s4, CLIENT4)[0]!.pppFrames.length,
      2,
      'the disabled server got nothing more',
    );
    const v6 = clients[1]!;
    const acks = v6.c.fromServer.filter((x) => x === 2).length;
    v6.c.sendLcpRequest(4);
    await until(
      () => v6.c.fromServer.filter((x) => x === 2).length > acks,
      'the IPv6 tunnel is untouched',
    );
  } finally {
    for (const { c } of clients) {
      if (c.proc.exitCode === null && c.proc.pid) c.proc.kill('SIGTERM');
      c.close();
    }
    await vpnlb.stop();
  }
  // A normal stop (no --keep-state) removes the tables.
  const last = await startVpnlb(configPath);
  await last.stop();
  assert.doesNotMatch(
    await lb.exec('nft', ['list', 'tables']),
    /vpnlb_sstp/,
    last.log().slice(-1500),
  );
});
