/**
 * The userspace IKEv2 relay on loopback, between simulated clients and a simulated RRAS farm
 * (no root). Affinity 500 → 4500 → ESP, malformed input, flood bounds, failover and drain.
 *
 * One suite, two runs: forwarding in JavaScript (`fastPath: 'off'`) and in the native fast path
 * (native/udp-fastpath; the run is skipped, with the reason, when the addon is not built or
 * `VPNLB_RELAY_FASTPATH=0`). The behaviour, counters and drops must be the same.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { runIkeClient, type IkeClientResult } from '../../sim/client/ike-client.js';
import { bindUdp } from '../../sim/rras/ike-responder.js';
import {
  authMessage,
  espPacket,
  randomSpi64,
  saInitRequest,
} from '../../sim/rras/ike-sim-messages.js';
import { classifyNatT, parsePayloads, withNonEspMarker } from '../../protocol/ikev2/index.js';
import {
  startHarness,
  type Harness,
  type HarnessOptions,
} from '../../../test/support/relay-test-harness.js';
import { decide } from '../../control/decide.js';
import {
  loadNativeFastPath,
  fastPathEnabledByEnv,
  FASTPATH_ENV,
} from './fastpath/native-binding.js';
import { sleep } from '../../util/wait.js';

type Mode = 'javascript' | 'native';

/** Why the native run cannot happen here (printed as the skip reason), or false. */
function nativeSkip(): string | false {
  if (!fastPathEnabledByEnv()) return `${FASTPATH_ENV}=${process.env[FASTPATH_ENV]}`;
  const loaded = loadNativeFastPath();
  return 'unavailable' in loaded ? `native fast path unavailable: ${loaded.unavailable}` : false;
}

const FAST = { retransmitTimeouts: [300, 600, 1200], espTimeout: 1000 } as const;

function client(
  h: Harness,
  localAddress: string,
  extra: Partial<Parameters<typeof runIkeClient>[0]> = {},
): Promise<IkeClientResult> {
  return runIkeClient({ localAddress, server: h.vip, ...FAST, ...extra });
}

/** Each client reached exactly one server, on all three paths (IKE 500, IKE 4500, ESP). */
function assertWholeOnOneServer(
  h: Harness,
  results: readonly IkeClientResult[],
): Map<string, number> {
  const perServer = new Map<string, number>();
  for (const r of results) {
    assert.equal(r.ok, true, `client ${r.localAddress} failed: ${r.reason} ${r.detail}`);
    const servers = h.serversOf(r);
    assert.deepEqual(servers.length, 1, `client ${r.spiI} reached ${servers.join(', ')}`);
    const server = h.farm.servers.find((s) => s.name === servers[0])!;
    const sa = server.sas().find((s) => s.spiI === r.spiI)!;
    const kinds = new Set(sa.paths.map((p) => p.kind));
    assert.deepEqual([...kinds].sort(), ['esp', 'ike', 'ike-natt']);
    // The server saw the 500 half and the 4500 half from different source ports (like a NAT).
    const ikePath = sa.paths.find((p) => p.kind === 'ike')!.path;
    const nattPath = sa.paths.find((p) => p.kind === 'ike-natt')!.path;
    assert.notEqual(ikePath.split(' ')[1], nattPath.split(' ')[1]);
    perServer.set(server.name, (perServer.get(server.name) ?? 0) + 1);
  }
  return perServer;
}

for (const mode of ['javascript', 'native'] as const) {
  const skip = mode === 'native' ? nativeSkip() : false;
  if (skip) console.log(`# udp-relay (native fast path): skipped: ${skip}`);
  describe(`udp relay (${mode})`, { skip }, () => relaySuite(mode));
}

function relaySuite(mode: Mode): void {
  /** Starts the harness in this run's mode, and checks that the mode is really in force. */
  async function start(o: HarnessOptions): Promise<Harness> {
    const h = await startHarness({
      ...o,
      relayOptions: { ...o.relayOptions, fastPath: mode === 'native' ? 'auto' : 'off' },
    });
    const fast = h.relay.stats().fastPath;
    if (fast.active !== (mode === 'native')) {
      await h.close();
      assert.fail(
        `fast path ${fast.active ? 'active' : 'inactive'} in the ${mode} run: ${fast.reason ?? ''}`,
      );
    }
    return h;
  }

  test('affinity ike-spi: IKE on 500, IKE on 4500 from a new port and ESP reach one server; full NAT hides the client', async () => {
    const h = await start({
      serverAddresses: ['127.0.21.1', '127.0.21.2', '127.0.21.3'],
      virtualIp: '127.0.11.1',
    });
    try {
      const results = await Promise.all(
        Array.from({ length: 24 }, (_, i) => client(h, `127.1.1.${(i % 4) + 1}`)),
      );
      const perServer = assertWholeOnOneServer(h, results);
      assert.ok(perServer.size >= 2, 'ike-spi spreads the SAs of one client address over the farm');
      for (const s of h.farm.servers)
        for (const a of s.clientAddresses())
          assert.equal(a, '127.0.0.1', 'full NAT: servers see the relay');
      const st = h.relay.status();
      assert.equal(st.dataplane, 'userspace-relay');
      assert.equal(st.listeners.length, 2);
      assert.match(st.warnings.join('\n'), /error 809/);
      const total = Object.values(st.backends).reduce((n, b) => n + (b.packetsIn ?? 0), 0);
      assert.ok(total >= 24 * 5, `counted ${total} packets towards the backends`);
      if (mode === 'native') {
        const fast = h.relay.stats().fastPath;
        assert.ok(
          fast.forwardedIn > 0 && fast.forwardedOut > 0,
          `the native thread forwarded (${fast.forwardedIn} in, ${fast.forwardedOut} out)`,
        );
        assert.ok(fast.flows > 0, 'flows are installed natively');
      }

      // ESP from a new source port of a known client address follows the address's pin (its
      // most recent session: a client address of its own, so "most recent" is unambiguous).
      const last = await client(h, '127.1.1.9');
      assert.equal(last.ok, true);
      const echo = await sendAndListen(
        last.localAddress,
        espPacket(last.serverEspSpi!, 99),
        h.vip.address,
        h.vip.natTPort,
      );
      assert.ok(
        echo !== undefined && classifyNatT(echo).kind === 'esp',
        'stray ESP of a pinned client is relayed and echoed',
      );
      // ESP from an address the relay never saw is dropped and counted, not sent to a random server.
      const before = h.relay.stats().dropped['esp-no-flow'];
      await sendAndListen(
        '127.1.1.200',
        espPacket(0x12345678, 1),
        h.vip.address,
        h.vip.natTPort,
        150,
      );
      assert.equal(h.relay.stats().dropped['esp-no-flow'], before + 1);
    } finally {
      await h.close();
    }
  });

  test('counters: the relay counts exactly what the servers received, in status and in metrics', async () => {
    const h = await start({
      serverAddresses: ['127.0.29.1', '127.0.29.2', '127.0.29.3'],
      virtualIp: '127.0.19.1',
    });
    try {
      const results = await Promise.all(
        Array.from({ length: 4 }, (_, i) =>
          client(h, `127.1.9.${i + 1}`, { espPackets: 40, espInterval: 1 }),
        ),
      );
      for (const r of results) assert.equal(r.ok, true, `${r.reason} ${r.detail}`);
      await sleep(50);
      const received = h.farm.servers.reduce(
        (n, s) => n + s.sas().reduce((m, sa) => m + sa.paths.reduce((k, p) => k + p.packets, 0), 0),
        0,
      );
      const st = h.relay.status();
      const packetsIn = Object.values(st.backends).reduce((n, b) => n + (b.packetsIn ?? 0), 0);
      const packetsOut = Object.values(st.backends).reduce((n, b) => n + (b.packetsOut ?? 0), 0);
      assert.equal(packetsIn, received, 'to_backend = datagrams the servers received');
      const echoed = results.reduce((n, r) => n + r.espEchoed, 0);
      assert.ok(
        packetsOut >= echoed + 2 * results.length,
        `to_client ${packetsOut} covers the answers and ${echoed} ESP echoes`,
      );
      await h.relay.stop();
      const text = await h.metrics.text();
      const sum = (direction: string) =>
        [
          ...text.matchAll(
            new RegExp(
              `vpnlb_relay_packets_total\\{[^}]*direction="${direction}"[^}]*\\} (\\d+)`,
              'g',
            ),
          ),
        ].reduce((n, m) => n + Number(m[1]), 0);
      assert.equal(sum('to_backend'), packetsIn);
      assert.equal(sum('to_client'), packetsOut);
      assert.match(text, /vpnlb_relay_fastpath_active\{service="ike"\} 0/, 'stopped: not active');
    } finally {
      await h.close();
    }
  });

  test("affinity ike-spi: a new SA joins the server of its client address's NAT-T flow (device + user tunnel); ike-spi-hash does not", async () => {
    for (const affinity of ['ike-spi', 'ike-spi-hash'] as const) {
      const h = await start({
        serverAddresses: ['127.0.24.1', '127.0.24.2', '127.0.24.3'],
        virtualIp: '127.0.14.1',
        affinity,
      });
      try {
        // The device tunnel: its NAT-T flow stays in the relay's table for flowTimeout.
        const device = await client(h, '127.1.4.1');
        assert.equal(device.ok, true, `${device.reason} ${device.detail}`);
        const [deviceServer] = h.serversOf(device);
        // The user tunnel's SPI hashes to another server (chosen so): only the NAT-T flow can send it to the device's.
        const snapshot = h.controller.service(h.serviceName)!;
        let spiI: bigint;
        do spiI = randomSpi64();
        while (
          decide(snapshot, { address: '127.1.4.1', spi: spiBytes(spiI) }).backend?.name ===
          deviceServer
        );
        const user = await client(h, '127.1.4.1', { spiI });
        assert.equal(user.ok, true, `${user.reason} ${user.detail}`);
        const joined = h.serversOf(user);
        if (affinity === 'ike-spi')
          assert.deepEqual(joined, [deviceServer], 'the user tunnel joins the device tunnel');
        else
          assert.notDeepEqual(
            joined,
            [deviceServer],
            'plain SPI hashing places the user tunnel by its SPI',
          );
        // Another address is not affected by this one's flows.
        const other = await client(h, '127.1.4.2', { spiI: randomSpi64() });
        assert.equal(other.ok, true);
      } finally {
        await h.close();
      }
    }
  });

  test('affinity ike-spi: an address with two live NAT-T flows (two devices behind one NAT) is shared: its next SA is placed by SPI', async () => {
    const h = await start({
      serverAddresses: ['127.0.25.1', '127.0.25.2', '127.0.25.3'],
      virtualIp: '127.0.15.1',
      affinity: 'ike-spi',
    });
    try {
      const address = '127.1.5.1';
      const snapshot = h.controller.service(h.serviceName)!;
      const first = await client(h, address);
      assert.equal(first.ok, true, `${first.reason} ${first.detail}`);
      const [flowServer] = h.serversOf(first);
      const avoiding = () => {
        let spiI: bigint;
        do spiI = randomSpi64();
        while (decide(snapshot, { address, spi: spiBytes(spiI) }).backend?.name === flowServer);
        return spiI;
      };
      // A second device (its own NAT-T source port): the address has one flow when it starts, so it joins.
      const second = await client(h, address, { spiI: avoiding() });
      assert.equal(second.ok, true, `${second.reason} ${second.detail}`);
      assert.deepEqual(
        h.serversOf(second),
        [flowServer],
        'one flow: joined like a second tunnel of one device',
      );
      // Two flows, both on one server: a third device is placed by its SPI, not sent after them.
      const spiI = avoiding();
      const third = await client(h, address, { spiI });
      assert.equal(third.ok, true, `${third.reason} ${third.detail}`);
      assert.deepEqual(h.serversOf(third), [
        decide(snapshot, { address, spi: spiBytes(spiI) }).backend?.name,
      ]);
      assert.notDeepEqual(h.serversOf(third), [flowServer]);
    } finally {
      await h.close();
    }
  });

  test('affinity source-ip: every SA of one client address goes to one server', async () => {
    const h = await start({
      serverAddresses: ['127.0.22.1', '127.0.22.2', '127.0.22.3'],
      virtualIp: '127.0.12.1',
      affinity: 'source-ip',
    });
    try {
      const results = await Promise.all(
        Array.from({ length: 24 }, (_, i) => client(h, `127.1.2.${(i % 8) + 1}`)),
      );
      assertWholeOnOneServer(h, results);
      const byAddress = new Map<string, Set<string>>();
      for (const r of results) {
        const set = byAddress.get(r.localAddress) ?? new Set();
        for (const s of h.serversOf(r)) set.add(s);
        byAddress.set(r.localAddress, set);
      }
      for (const [address, servers] of byAddress)
        assert.equal(servers.size, 1, `${address} reached ${[...servers].join(', ')}`);
    } finally {
      await h.close();
    }
  });

  test('malformed UDP on 500 and 4500 is counted by reason and dropped; a good client is not disturbed', async () => {
    const h = await start({
      serverAddresses: ['127.0.23.1', '127.0.23.2', '127.0.23.3'],
      virtualIp: '127.0.13.1',
    });
    const attacker = await bindUdp('udp4', '127.1.3.66', 0);
    try {
      const good = client(h, '127.1.3.1', { espPackets: 20, espInterval: 5 });
      const valid = Buffer.from(
        saInitRequest(
          randomSpi64(),
          { address: '127.1.3.66', port: 1 },
          { address: '127.0.13.1', port: 2 },
        ),
      );
      const wrongLength = Buffer.from(valid);
      wrongLength.writeUInt32BE(valid.length + 10, 24);
      const ikev1 = Buffer.from(valid);
      ikev1[17] = 0x10;
      const garbage: [Buffer, number][] = [];
      for (let i = 0; i < 50; i++)
        garbage.push([randomBytes(1 + (i % 60)), i % 2 ? h.vip.ikePort : h.vip.natTPort]);
      garbage.push(
        [valid.subarray(0, 20), h.vip.ikePort],
        [wrongLength, h.vip.ikePort],
        [ikev1, h.vip.ikePort],
      );
      garbage.push(
        [Buffer.alloc(0), h.vip.natTPort],
        [Buffer.from([0, 0, 0, 0, 1, 2]), h.vip.natTPort],
        [Buffer.from([1, 2, 3]), h.vip.natTPort],
      );
      garbage.push([Buffer.concat([Buffer.alloc(4), wrongLength]), h.vip.natTPort]);
      for (const [d, port] of garbage) attacker.send(d, port, h.vip.address);
      await sleep(100);
      const total = Object.values(h.relay.stats().dropped).reduce((a, b) => a + b, 0);
      // Every datagram dropped (random ESP-looking bytes count as "ESP with no flow").
      assert.equal(total, garbage.length);
      // An existing flow that then sends garbage: the per-packet check drops it too.
      attacker.send(valid, h.vip.ikePort, h.vip.address);
      await sleep(100);
      attacker.send(wrongLength, h.vip.ikePort, h.vip.address);
      const r = await good;
      assert.equal(r.ok, true, `${r.reason} ${r.detail}`);
      assert.equal(r.espEchoed, 20);
      await sleep(50);
      const d = h.relay.stats().dropped;
      assert.ok(d['ike-too-short'] >= 1);
      assert.ok(d['ike-length-mismatch'] >= 2, 'wrong length on a new and on an existing flow');
      assert.ok(d['ike-bad-version'] >= 1);
      assert.ok(d['empty'] >= 1);
      assert.ok(d['esp-too-short'] >= 1);
      assert.ok(d['esp-no-flow'] >= 1);
      await h.relay.stop();
      const text = await h.metrics.text();
      assert.match(
        text,
        /vpnlb_relay_dropped_total\{service="ike",reason="ike-length-mismatch"\} [1-9]/,
      );
    } finally {
      attacker.close();
      await h.close();
    }
  });

  test('a flood of new source ports keeps the tables at maxFlows, and a good client still connects', async () => {
    const h = await start({
      serverAddresses: ['127.0.24.1', '127.0.24.2', '127.0.24.3'],
      virtualIp: '127.0.14.1',
      extraServiceYaml: '      maxFlows: 16\n',
    });
    const sockets: Socket[] = [];
    try {
      let maxSeen = 0;
      for (let i = 0; i < 200; i++) {
        const s = await bindUdp('udp4', `127.1.4.${(i % 50) + 2}`, 0);
        sockets.push(s);
        s.send(
          saInitRequest(
            randomSpi64(),
            { address: '127.1.4.2', port: 1 },
            { address: h.vip.address, port: 2 },
          ),
          h.vip.ikePort,
          h.vip.address,
        );
        if (i % 10 === 0) await sleep(2);
        const st = h.relay.stats();
        maxSeen = Math.max(maxSeen, st.flows, st.sessions, st.pins);
      }
      await sleep(100);
      const st = h.relay.stats();
      assert.ok(maxSeen <= 16 && st.flows <= 16 && st.sessions <= 16, `tables grew to ${maxSeen}`);
      const answered = h.farm.servers.reduce((n, s) => n + s.stats().saInitAnswered, 0);
      assert.ok(
        answered > 16,
        `the flood went through the relay (${answered} IKE_SA_INITs answered) while the table stayed bounded`,
      );
      const r = await client(h, '127.1.4.1');
      assert.equal(r.ok, true, `${r.reason} ${r.detail}`);
      assert.ok(h.relay.stats().flows <= 16);
    } finally {
      for (const s of sockets) s.close();
      await h.close();
    }
  });

  test('a backend marked down loses its flows and gets no new client; a drained one keeps its handshakes', async () => {
    const h = await start({
      serverAddresses: ['127.0.25.1', '127.0.25.2', '127.0.25.3'],
      virtualIp: '127.0.15.1',
    });
    try {
      const first = await Promise.all(
        Array.from({ length: 12 }, (_, i) => client(h, `127.1.5.${i + 1}`)),
      );
      const perServer = assertWholeOnOneServer(h, first);
      const [downName] = [...perServer.entries()].sort((a, b) => b[1] - a[1])[0]!;
      assert.ok((h.relay.status().backends[downName]?.flows ?? 0) > 0);
      h.controller.setHealth(h.serviceName, downName, 'down', 'test: server stopped answering');
      await h.settled();
      assert.equal(
        h.relay.status().backends[downName]?.flows,
        0,
        'flows of a down backend are removed',
      );
      const after = await Promise.all(
        Array.from({ length: 12 }, (_, i) => client(h, `127.1.5.${i + 101}`)),
      );
      for (const r of after)
        assert.ok(!h.serversOf(r).includes(downName), 'no new client on the down backend');
      assertWholeOnOneServer(h, after);

      // Drain: a client that did IKE_SA_INIT before the drain completes IKE_AUTH on the same server.
      h.controller.setHealth(h.serviceName, downName, 'up', 'test: back');
      await h.settled();
      let drained: { name: string; spiI: bigint; spiR: bigint; natT: Socket } | undefined;
      for (let i = 0; i < 40 && !drained; i++) {
        const half = await halfHandshake(h, `127.1.5.${200 + i}`);
        const server = h.farm.servers.find((s) =>
          s.sas().some((sa) => sa.spiI === half.spiI.toString(16).padStart(16, '0')),
        );
        if (server && server.name === downName) drained = { name: server.name, ...half };
        else half.natT.close();
      }
      assert.ok(drained, 'found a half-open client on the chosen server');
      h.controller.setAdminState(drained.name, 'draining');
      await h.settled();
      const flowsBefore = h.relay.status().backends[drained.name]?.flows ?? 0;
      assert.ok(flowsBefore > 0, 'draining keeps existing flows');
      const reply = await sendAndListenOn(
        drained.natT,
        withNonEspMarker(authMessage(drained.spiI, drained.spiR, false, 0x4242)),
        h.vip.address,
        h.vip.natTPort,
      );
      drained.natT.close();
      assert.ok(reply, 'IKE_AUTH after the drain reached the server that holds the SA');
      const c = classifyNatT(reply);
      assert.equal(c.kind, 'ike');
      const fresh = await Promise.all(
        Array.from({ length: 12 }, (_, i) => client(h, `127.1.5.${150 + i}`)),
      );
      for (const r of fresh)
        assert.ok(!h.serversOf(r).includes(drained.name), 'no new client on the draining backend');
    } finally {
      await h.close();
    }
  });

  test('SNAT pool: no (address, server) pair exceeds the cap; slots come back when flows expire', async () => {
    const h = await start({
      serverAddresses: ['127.0.27.1', '127.0.27.2', '127.0.27.3'],
      virtualIp: '127.0.17.1',
      extraServiceYaml:
        '      flowTimeout: 1s\n      snat: { addresses: [127.0.37.1, 127.0.37.2], maxSasPerAddress: 1 }\n',
    });
    try {
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          client(h, `127.1.7.${i + 1}`, { retransmitTimeouts: [200, 200] }),
        ),
      );
      for (const s of h.farm.servers) {
        for (const [address, sas] of Object.entries(s.sasPerAddress())) {
          assert.ok(address === '127.0.37.1' || address === '127.0.37.2', `server saw ${address}`);
          assert.ok(sas <= 1, `${s.name} holds ${sas} SAs from ${address}`);
        }
      }
      const ok = results.filter((r) => r.ok).length;
      assert.ok(ok <= 6, 'at most 2 addresses x 1 session x 3 servers');
      assert.ok(h.relay.stats().dropped['snat-exhausted'] > 0, 'refusals are counted');
      for (const r of results.filter((x) => x.ok)) assert.equal(h.serversOf(r).length, 1);
      // Idle flows expire (flowTimeout 1 s) and give their SNAT slots back.
      const deadline = Date.now() + 5000;
      while (h.relay.stats().flows > 0 && Date.now() < deadline) await sleep(100);
      assert.equal(h.relay.stats().flows, 0);
      assert.deepEqual(h.relay.stats().snat, []);
    } finally {
      await h.close();
    }
  });

  test('the new-flow budget sheds a burst of new source ports beyond it; established flows keep forwarding (driven clock)', async () => {
    const clock = {
      t: 1_000_000,
      now() {
        return this.t;
      },
    };
    const h = await start({
      serverAddresses: ['127.0.28.1', '127.0.28.2', '127.0.28.3'],
      virtualIp: '127.0.18.1',
      relayOptions: { clock, maxNewFlowsPerSecond: 3 },
    });
    const sockets: Socket[] = [];
    const forwarded = () =>
      Object.values(h.relay.status().backends).reduce((n, b) => n + (b.packetsIn ?? 0), 0);
    const initFrom = (address: string) =>
      Buffer.from(
        saInitRequest(randomSpi64(), { address, port: 1 }, { address: h.vip.address, port: 2 }),
      );
    try {
      const a = await bindUdp('udp4', '127.1.8.1', 0);
      sockets.push(a);
      const first = initFrom('127.1.8.1');
      assert.ok(
        await sendAndListenOn(a, first, h.vip.address, h.vip.ikePort),
        'the first client is answered (one token)',
      );
      for (let i = 0; i < 10; i++) {
        const s = await bindUdp('udp4', `127.1.8.${i + 2}`, 0);
        sockets.push(s);
        s.send(initFrom(`127.1.8.${i + 2}`), h.vip.ikePort, h.vip.address);
      }
      await sleep(150);
      assert.equal(
        h.relay.stats().flows,
        3,
        'the burst of 3 tokens: the first client and two of the ten',
      );
      assert.equal(h.relay.stats().dropped['new-flow-shed'], 8);
      // The established flow is not subject to the budget.
      const before = forwarded();
      a.send(first, h.vip.ikePort, h.vip.address);
      await sleep(150);
      assert.equal(forwarded(), before + 1);
      assert.equal(h.relay.stats().dropped['new-flow-shed'], 8);
      // One second later the budget has refilled: a new client gets through.
      clock.t += 1000;
      const b = await bindUdp('udp4', '127.1.8.99', 0);
      sockets.push(b);
      assert.ok(
        await sendAndListenOn(b, initFrom('127.1.8.99'), h.vip.address, h.vip.ikePort),
        'answered after the refill',
      );
      assert.equal(h.relay.stats().flows, 4);
    } finally {
      for (const s of sockets) s.close();
      await h.close();
    }
  });

  test('one source flooding new flows at 25x the budget leaves a well-behaved client its handshakes (issue 11, finding 3)', async (t) => {
    // The budget of 20 new flows/s and its default share per source (a quarter: 5/s); the
    // flooder sends ~450 IKE_SA_INITs/s from 400 source ports of one address (fewer ports would
    // soon all hold admitted flows). Without the per-source share the flooder spent the budget:
    // 3 of 9 tries got through here (0 of 9 in the audit).
    const h = await start({
      serverAddresses: ['127.0.29.1', '127.0.29.2', '127.0.29.3'],
      virtualIp: '127.0.19.1',
      extraServiceYaml: '      maxNewFlowsPerSecond: 20\n',
    });
    const flooders: Socket[] = [];
    let flood: NodeJS.Timeout | undefined;
    try {
      for (let i = 0; i < 400; i++) flooders.push(await bindUdp('udp4', '127.1.9.1', 0));
      let n = 0;
      let sent = 0;
      const started = Date.now();
      flood = setInterval(() => {
        const s = flooders[n++ % flooders.length]!;
        s.send(
          Buffer.from(
            saInitRequest(
              randomSpi64(),
              { address: '127.1.9.1', port: 1 },
              { address: h.vip.address, port: 2 },
            ),
          ),
          h.vip.ikePort,
          h.vip.address,
        );
        sent++;
      }, 2);
      await sleep(300); // the flood is on before the client's first try
      let answered = 0;
      const tries = 9;
      for (let i = 0; i < tries; i++) {
        // One try every 300 ms (IKEv2 initiators retransmit after ~1 s and back off): a new
        // port each time, so each try is a new flow.
        if (i > 0) await sleep(300);
        const s = await bindUdp('udp4', '127.1.9.2', 0);
        const reply = await sendAndListenOn(
          s,
          saInitRequest(
            randomSpi64(),
            { address: '127.1.9.2', port: 1 },
            { address: h.vip.address, port: 2 },
          ),
          h.vip.address,
          h.vip.ikePort,
          300,
        );
        s.close();
        if (reply) answered++;
      }
      clearInterval(flood);
      const seconds = (Date.now() - started) / 1000;
      const dropped = h.relay.stats().dropped;
      t.diagnostic(
        `flooder: ${sent} IKE_SA_INITs in ${seconds.toFixed(1)} s (${Math.round(sent / seconds)}/s against a budget of 20/s); shed by its share ${dropped['new-flow-source-shed']}, by the budget ${dropped['new-flow-shed']}; well-behaved client: ${answered} of ${tries} handshakes answered`,
      );
      assert.ok(sent / seconds > 20 * 5, 'the flood ran well above the budget');
      assert.ok(dropped['new-flow-source-shed'] > 0, 'the flooder was held to its share');
      assert.equal(answered, tries, 'every handshake of the well-behaved client got through');
    } finally {
      clearInterval(flood);
      for (const s of flooders) s.close();
      await h.close();
    }
  });
}

/** IKE_SA_INIT through the relay from a throwaway socket; returns the SPIs and the 4500 socket. */
async function halfHandshake(
  h: Harness,
  localAddress: string,
): Promise<{ spiI: bigint; spiR: bigint; natT: Socket }> {
  const spiI = randomSpi64();
  const ike = await bindUdp('udp4', localAddress, 0);
  const natT = await bindUdp('udp4', localAddress, 0);
  const reply = await sendAndListenOn(
    ike,
    saInitRequest(spiI, { address: localAddress, port: 1 }, { address: h.vip.address, port: 2 }),
    h.vip.address,
    h.vip.ikePort,
  );
  ike.close();
  const p = reply && parsePayloads(reply);
  assert.ok(p && p.kind === 'ok', 'IKE_SA_INIT answered');
  return { spiI, spiR: p.header.spiR, natT };
}

async function sendAndListen(
  localAddress: string,
  data: Uint8Array,
  address: string,
  port: number,
  timeout = 1000,
): Promise<Buffer | undefined> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind({ address: localAddress, port: 0 }, resolve));
  try {
    return await sendAndListenOn(s, data, address, port, timeout);
  } finally {
    s.close();
  }
}

function sendAndListenOn(
  s: Socket,
  data: Uint8Array,
  address: string,
  port: number,
  timeout = 1000,
): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      s.off('message', on);
      resolve(undefined);
    }, timeout);
    const on = (m: Buffer) => {
      clearTimeout(timer);
      s.off('message', on);
      resolve(m);
    };
    s.on('message', on);
    s.send(data, port, address);
  });
}

/** An initiator SPI as the 8 bytes on the wire. */
function spiBytes(spi: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(spi);
  return b;
}
