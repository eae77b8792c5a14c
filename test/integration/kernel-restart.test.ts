/**
 * Control-plane restart of a real `vpnlb run` process with the kernel data plane (root):
 * `kill -9` under a continuous ESP-in-UDP stream loses nothing while vpnlb is dead and after a
 * new start, which adopts the nftables table without flushing it or conntrack; then
 * `vpnlb stop --config FILE` removes the table.
 *
 * Topology (routed veths): client 198.18.1.2 ↔ balancer (VIP 198.19.0.1) ↔ two servers whose
 * default route is the balancer (transparent mode). The servers echo every datagram.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { startUdpServer } from '../../lab/udp-peers.js';
import { Topology, type Namespace } from '../../lab/netns.js';
import { vpnlbArgv } from '../../lab/vpnlb-process.js';
import { waitUntil } from '../../src/util/wait.js';
import { kernelTestSkip } from '../support/kernel-lab.js';

const skip = kernelTestSkip('kernel restart integration test');

const VIP = '198.19.0.1';
const CLIENT = '198.18.1.2';
const SERVERS = [1, 2].map((n) => ({
  name: `s${n}`,
  address: `198.18.1${n}.2`,
  gw: `198.18.1${n}.1`,
}));
const TABLE = 'krst';

let topo: Topology;
let lb: Namespace;
let client: Namespace;
let dir: string;
let configFile: string;
const seen: { srv: string; raddr: string; rport: number; seq: number }[] = [];

/** Echoes every datagram; records (server, source, ESP sequence number) on stdout. */
const SERVER_SCRIPT = `
const dgram = require('node:dgram');
const name = process.argv[1];
for (const port of [500, 4500]) {
  const s = dgram.createSocket('udp4');
  s.on('message', (msg, r) => {
    const seq = msg.length >= 8 && msg.readUInt32BE(0) !== 0 ? msg.readUInt32BE(4) : -1;
    process.stdout.write(JSON.stringify({ srv: name, raddr: r.address, rport: r.port, seq }) + '\\n');
    s.send(msg, r.port, r.address);
  });
  s.bind(port, '0.0.0.0');
}
`;

/**
 * One NAT-T flow: IKE behind the non-ESP marker first (RFC 3948 §2.2: it places the flow by
 * SPI), then ESP packets (RFC 4303: SPI, sequence number) every \`gap\` ms from the same
 * socket until a line arrives on stdin (or \`max\` packets, a bound). Prints
 * { port, sent: [[seq, ms]...], echoed: [seq...] } a second after the last one.
 */
const STREAM_SCRIPT = `
const dgram = require('node:dgram');
const a = JSON.parse(process.argv[1]);
const s = dgram.createSocket('udp4');
const echoed = new Set();
const sent = [];
let server = null;
s.on('message', (m) => {
  if (m.readUInt32BE(0) === 0) { server = true; return; }
  echoed.add(m.readUInt32BE(4));
});
s.bind(0, a.bind, async () => {
  const ike = Buffer.alloc(32); Buffer.from(a.spi, 'hex').copy(ike, 4); ike[20] = 33; ike[21] = 0x20; ike[22] = 35; ike[23] = 0x08; ike.writeUInt32BE(28, 28);
  for (let i = 0; i < 50 && !server; i++) { s.send(ike, a.dport, a.to); await new Promise((r) => setTimeout(r, 100)); }
  if (!server) { console.log(JSON.stringify({ error: 'no answer to IKE' })); s.close(); return; }
  console.error('streaming');
  let stop = false;
  process.stdin.on('data', () => { stop = true; });
  for (let seq = 1; seq <= a.max && !stop; seq++) {
    const esp = Buffer.alloc(64, 0xab); esp.writeUInt32BE(0xc0ffee01, 0); esp.writeUInt32BE(seq, 4);
    s.send(esp, a.dport, a.to);
    sent.push([seq, Date.now()]);
    await new Promise((r) => setTimeout(r, a.gap));
  }
  setTimeout(() => { console.log(JSON.stringify({ port: s.address().port, sent, echoed: [...echoed] })); s.close(); }, 1000);
});
`;

function yaml(): string {
  const backends = SERVERS.map((s) => `      - { name: ${s.name}, address: "${s.address}" }`).join(
    '\n',
  );
  return [
    'admin: { listen: 127.0.0.1, port: 0, tokenFile: admin.token }',
    'log: { level: info }',
    'pools:',
    '  farm:',
    '    backends:',
    backends,
    'services:',
    '  ikev2:',
    `    - { name: ike, virtualIp: "${VIP}", pool: farm, dataplane: kernel, table: ${TABLE} }`,
    '',
  ].join('\n');
}

/** A running `vpnlb run` in the balancer namespace, with its output collected. */
interface VpnlbProc {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function startVpnlb(): VpnlbProc {
  const [node, ...args] = vpnlbArgv(['run', '--config', configFile]);
  const child = lb.spawn(node as string, args);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  return { child, output: () => out, exited };
}

const waitFor = (what: string, cond: () => boolean | Promise<boolean>, ms = 20_000) =>
  waitUntil(what, cond, ms, 50);

const slotMap = async () =>
  lb
    .exec('nft', ['-j', 'list', 'map', 'ip', TABLE, 'slots'])
    .then((t) =>
      JSON.stringify(
        (JSON.parse(t) as { nftables: { map?: { elem?: unknown } }[] }).nftables.find((x) => x.map)
          ?.map?.elem,
      ),
    );
/** Original tuples of the service's conntrack entries. */
const ctTuples = async () =>
  (await lb.exec('conntrack', ['-L', '-p', 'udp', '--orig-dst', VIP]).catch(() => ''))
    .split('\n')
    .map((l) => /src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)/.exec(l)?.slice(1).join(' '))
    .filter((x): x is string => x !== undefined);

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'krst-'));
  configFile = join(dir, 'vpnlb.yaml');
  writeFileSync(configFile, yaml());
  topo = Topology.create('krst');
  lb = await topo.addNamespace('lb');
  client = await topo.addNamespace('cl');
  await topo.link({
    a: 'cl',
    b: 'lb',
    aAddresses: [`${CLIENT}/24`],
    bAddresses: ['198.18.1.1/24'],
  });
  await topo.route('cl', 'default', '198.18.1.1');
  for (const s of SERVERS) {
    const ns = await topo.addNamespace(s.name);
    await topo.link({
      a: s.name,
      b: 'lb',
      aAddresses: [`${s.address}/24`],
      bAddresses: [`${s.gw}/24`],
    });
    await topo.route(s.name, 'default', s.gw);
    startUdpServer(ns, s.name, seen, SERVER_SCRIPT);
  }
});

after(async () => {
  await topo?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('kill -9 of vpnlb run under an ESP stream: no loss while dead or after the restart, which adopts the table; vpnlb stop removes it', {
  skip,
  timeout: 90_000,
}, async () => {
  const first = startVpnlb();
  let second: VpnlbProc | undefined;
  try {
    await waitFor('vpnlb run to start', () => first.output().includes('vpnlb running'));
    assert.match(first.output(), new RegExp(`created nftables table ip ${TABLE}`));
    const admin = /admin http:\/\/127\.0\.0\.1:(\d+)\//.exec(first.output());
    assert.ok(admin, first.output());
    const [statusNode, ...statusArgs] = vpnlbArgv([
      'status',
      '--json',
      '--admin',
      `http://127.0.0.1:${admin[1]}`,
      '--token-file',
      join(dir, 'admin.token'),
    ]);
    const status = JSON.parse(await lb.exec(statusNode!, statusArgs)) as unknown;
    assert.match(JSON.stringify(status), /"dataplane":"kernel"/);

    // The stream: one ESP packet every 10 ms through one established flow, until told to stop.
    const stream = client.spawn(
      process.execPath,
      [
        '-e',
        STREAM_SCRIPT,
        JSON.stringify({
          bind: CLIENT,
          to: VIP,
          dport: 4500,
          spi: randomBytes(8).toString('hex'),
          max: 6000,
          gap: 10,
        }),
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let streamOut = '';
    let streamErr = '';
    stream.stdout?.on('data', (d: Buffer) => (streamOut += d.toString()));
    stream.stderr?.on('data', (d: Buffer) => (streamErr += d.toString()));
    // 'close', not 'exit': the stream's report may still be in its stdout pipe at exit.
    const streamDone = new Promise<void>((resolve) => stream.once('close', () => resolve()));
    await waitFor(
      'the stream to start',
      () => streamErr.includes('streaming') || streamOut.includes('error'),
    );
    await new Promise((r) => setTimeout(r, 800));

    const mapBefore = await slotMap();
    const ctBefore = await ctTuples();
    assert.ok(
      ctBefore.some((t) => t.startsWith(`${CLIENT} ${VIP} `) && t.endsWith(' 4500')),
      `the stream's conntrack entry: ${ctBefore.join('; ')}`,
    );

    // kill -9: no cleanup code runs.
    const killedAt = Date.now();
    process.kill(first.child.pid as number, 'SIGKILL');
    await first.exited;
    assert.match(
      await lb.exec('nft', ['list', 'tables']),
      new RegExp(`table ip ${TABLE}\\b`),
      'the table outlives the process',
    );
    await new Promise((r) => setTimeout(r, 1500));

    // A new start adopts the table: same map, same conntrack entries.
    second = startVpnlb();
    const p2 = second;
    await waitFor('the second vpnlb run to start', () => p2.output().includes('vpnlb running'));
    const readyAt = Date.now();
    assert.match(
      p2.output(),
      new RegExp(
        `adopted the existing nftables table ip ${TABLE} without flushing it \\(0 slots rewritten\\)`,
      ),
    );
    assert.equal(await slotMap(), mapBefore, 'slot map unchanged by the adoption');
    const ctAfter = new Set(await ctTuples());
    for (const t of ctBefore)
      assert.ok(ctAfter.has(t), `conntrack entry ${t} kept across the restart`);

    const restartMs = readyAt - killedAt;
    await new Promise((r) => setTimeout(r, 1500));
    stream.stdin?.end('stop\n');
    await streamDone;
    const result = JSON.parse(streamOut.trim()) as {
      port: number;
      sent: [number, number][];
      echoed: number[];
    };
    const echoed = new Set(result.echoed);
    const lost = result.sent.filter(([seq]) => !echoed.has(seq)).map(([seq]) => seq);
    const whileDead = result.sent.filter(([, t]) => t >= killedAt && t < readyAt).length;
    const afterRestart = result.sent.filter(([, t]) => t >= readyAt).length;
    console.log(
      `${result.sent.length} packets, ${whileDead} sent while vpnlb was dead or starting (${restartMs} ms), ${afterRestart} after; lost ${lost.length}`,
    );
    assert.deepEqual(lost, [], `${lost.length} packets lost`);
    assert.ok(whileDead >= 50, `${whileDead} packets sent while vpnlb was dead`);
    assert.ok(afterRestart >= 50, `${afterRestart} packets sent after the restart`);
    // One server got the whole stream, from the client's real address and port.
    const mine = seen.filter((r) => r.seq > 0 && r.rport === result.port);
    assert.equal(new Set(mine.map((r) => r.srv)).size, 1);
    assert.ok(mine.every((r) => r.raddr === CLIENT));
    assert.equal(new Set(mine.map((r) => r.seq)).size, result.sent.length);

    // Killed again, then `vpnlb stop --config` removes the table (and only it).
    process.kill(p2.child.pid as number, 'SIGKILL');
    await p2.exited;
    const [node, ...args] = vpnlbArgv(['stop', '--config', configFile]);
    const out = await lb.exec(node as string, args);
    assert.match(out, new RegExp(`deleted nftables table ip ${TABLE}`));
    assert.doesNotMatch(await lb.exec('nft', ['list', 'tables']), new RegExp(`\\b${TABLE}\\b`));
  } finally {
    for (const p of [first, second]) {
      if (p && p.child.exitCode === null && p.child.signalCode === null) {
        process.kill(p.child.pid as number, 'SIGKILL');
        await p.exited;
      }
    }
  }
});

test('vpnlb run: SIGTERM with --keep-state leaves the table; plain SIGTERM deletes it', {
  skip,
  timeout: 60_000,
}, async () => {
  for (const keep of [true, false]) {
    const [node, ...args] = vpnlbArgv([
      'run',
      '--config',
      configFile,
      ...(keep ? ['--keep-state'] : []),
    ]);
    const child = lb.spawn(node as string, args);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => resolve(code)),
    );
    await waitFor('vpnlb run to start', () => out.includes('vpnlb running'));
    process.kill(child.pid as number, 'SIGTERM');
    assert.equal(await exited, 0, out);
    const tables = await lb.exec('nft', ['list', 'tables']);
    if (keep) assert.match(tables, new RegExp(`table ip ${TABLE}\\b`), 'kept');
    else assert.doesNotMatch(tables, new RegExp(`\\b${TABLE}\\b`), 'deleted');
  }
});
