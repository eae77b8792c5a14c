/**
 * The IKEv2 relay in worker processes, on loopback between simulated clients and a simulated
 * RRAS farm (no root): this test process is the cluster's main process, as `vpnlb run` is.
 * Every datagram of a client address reaches the worker its source address hashes to (IKE on
 * 500, IKE and ESP on 4500 from another port), so each client is whole on one server; an IKE SA
 * whose client moves to an address that another worker serves stays on its server; `/metrics`
 * adds the workers up; a killed worker is restarted on the same sockets while the other
 * worker's clients keep going.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { Controller } from '../../control/controller.js';
import { Metrics } from '../../observability/metrics.js';
import { silentLogger } from '../../log/logger.js';
import { runIkeClient, type IkeClientResult } from '../../sim/client/ike-client.js';
import { authMessage } from '../../sim/rras/ike-sim-messages.js';
import type { SimFarm } from '../../sim/rras/sim-farm.js';
import { classifyNatT, withNonEspMarker } from '../../protocol/ikev2/index.js';
import { startFarmAndConfig } from '../../../test/support/relay-test-harness.js';
import { eventually } from '../../../test/support/sstp-test-lab.js';
import { sleep } from '../../util/wait.js';
import { reuseportUnavailable, workerOfAddress } from './reuseport-group.js';
import { WorkerPool } from './worker-pool.js';
import { UdpRelay } from '../relay/udp-relay.js';

const WORKERS = 2;
const skip = reuseportUnavailable() ?? false;
if (skip) console.log(`# relay workers: skipped: ${skip}`);

const FAST = { retransmitTimeouts: [300, 600, 1200], espTimeout: 1000 } as const;

interface Lab {
  readonly farm: SimFarm;
  readonly pool: WorkerPool;
  readonly controller: Controller;
  readonly metrics: Metrics;
  readonly vip: { address: string; ikePort: number; natTPort: number };
  client(localAddress: string): Promise<IkeClientResult>;
  /** The server that holds a client's SA (by its initiator SPI). */
  serverOf(r: IkeClientResult): string | undefined;
  close(): Promise<void>;
}

async function startLab(serverAddresses: string[], virtualIp: string): Promise<Lab> {
  const { farm, config } = await startFarmAndConfig({
    serverAddresses,
    virtualIp,
    workers: WORKERS,
    logLevel: 'error',
  });
  const controller = new Controller(config);
  const metrics = new Metrics();
  const service = config.services.ikev2[0]!;
  const pool = new WorkerPool(
    { kind: 'ikev2', service },
    { config, controller, logger: silentLogger(), metrics },
    WORKERS,
  );
  try {
    await pool.start(controller.service(service.name)!);
  } catch (err) {
    await farm.close();
    throw err;
  }
  controller.on('snapshot', (snap) => {
    const s = snap.services.find((x) => x.name === service.name);
    if (s) void pool.apply(s);
  });
  const vip = { address: virtualIp, ...pool.ports() };
  return {
    farm,
    pool,
    controller,
    metrics,
    vip: { address: virtualIp, ikePort: vip.ike, natTPort: vip.natT },
    client: (localAddress) =>
      runIkeClient({
        localAddress,
        server: { address: virtualIp, ikePort: vip.ike, natTPort: vip.natT },
        ...FAST,
      }),
    serverOf: (r) => farm.servers.find((s) => s.sas().some((sa) => sa.spiI === r.spiI))?.name,
    async close() {
      await pool.stop();
      await farm.close();
      controller.removeAllListeners();
    },
  };
}

/** Addresses of a /24 on loopback that the kernel gives to `worker`. */
function addressesOf(prefix: string, worker: number, n: number): string[] {
  const out: string[] = [];
  for (let i = 1; i < 255 && out.length < n; i++)
    if (workerOfAddress(`${prefix}.${i}`, WORKERS) === worker) out.push(`${prefix}.${i}`);
  return out;
}

/** An IKE message of an established SA sent from `from` to the VIP's 4500; the reply, if any. */
async function ikeFrom(lab: Lab, from: string, r: IkeClientResult): Promise<Buffer | undefined> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, from, () => resolve()));
  try {
    const reply = new Promise<Buffer>((resolve) => socket.once('message', (m) => resolve(m)));
    // IKE_AUTH again (a retransmission): only the server that holds the SA answers it.
    const msg = withNonEspMarker(
      authMessage(BigInt(`0x${r.spiI}`), BigInt(`0x${r.spiR}`), false, r.clientEspSpi),
    );
    for (let i = 0; i < 3; i++) {
      socket.send(msg, lab.vip.natTPort, lab.vip.address);
      const got = await Promise.race([reply, sleep(700).then(() => undefined)]);
      if (got) return got;
    }
    return undefined;
  } finally {
    socket.close();
  }
}

describe('a relay told why it runs alone', () => {
  it('shows the warning in its status', async () => {
    const { farm, config } = await startFarmAndConfig({
      serverAddresses: ['127.0.52.1', '127.0.52.2', '127.0.52.3'],
      virtualIp: '127.0.42.1',
    });
    const controller = new Controller(config);
    const relay = new UdpRelay(
      config.services.ikev2[0]!,
      { config, controller, logger: silentLogger(), metrics: new Metrics() },
      { kernelShed: 'off', warnings: ['the relay runs in the main process, not in 4 workers: x'] },
    );
    try {
      await relay.start(controller.service('ike')!);
      assert.ok(
        relay.status().warnings.includes('the relay runs in the main process, not in 4 workers: x'),
      );
    } finally {
      await relay.stop();
      await farm.close();
    }
  });
});

describe(`IKEv2 relay in ${WORKERS} worker processes`, { skip, timeout: 90_000 }, () => {
  let lab: Lab;
  before(async () => {
    lab = await startLab(['127.0.51.1', '127.0.51.2', '127.0.51.3'], '127.0.41.1');
  });
  after(async () => {
    await lab?.close();
  });

  it('every datagram of a client address reaches the worker its source hashes to; each client is whole on one server; /metrics adds the workers up', async () => {
    const addresses = [...addressesOf('127.1.41', 0, 5), ...addressesOf('127.1.41', 1, 7)];
    const results = await Promise.all(addresses.map((a) => lab.client(a)));
    for (const r of results) {
      assert.equal(r.ok, true, `client ${r.localAddress} failed: ${r.reason} ${r.detail}`);
      const servers = lab.farm.servers.filter(
        (s) =>
          s.seenSpis().has(r.spiI) ||
          (r.serverEspSpi !== undefined && s.unknownEspSpis().has(r.serverEspSpi)),
      );
      assert.equal(servers.length, 1, `client ${r.localAddress} reached ${servers.length} servers`);
      const sa = servers[0]!.sas().find((x) => x.spiI === r.spiI)!;
      assert.deepEqual([...new Set(sa.paths.map((p) => p.kind))].sort(), [
        'esp',
        'ike',
        'ike-natt',
      ]);
    }
    // Two flows per client (IKE on 500; IKE and ESP on 4500), all in the worker of its address.
    await eventually(
      () =>
        lab.pool
          .workers()
          .map((w) => w.served)
          .join() === '10,14',
      'each worker to report the flows of its own clients (5 and 7 clients)',
      5_000,
    ).catch((err: Error) =>
      assert.fail(
        `${err.message}: flows set up per worker ${lab.pool
          .workers()
          .map((w) => w.served)
          .join(', ')}, expected 10, 14`,
      ),
    );
    await eventually(
      async () => {
        const text = await lab.metrics.text();
        const flows = [...text.matchAll(/^vpnlb_relay_flows\{[^}]*service="ike"[^}]*\} (\d+)/gm)];
        return flows.reduce((n, m) => n + Number(m[1]), 0) === 24;
      },
      'the merged /metrics to count the 24 flows of both workers',
      5_000,
    );
    const text = await lab.metrics.text();
    assert.match(text, /^vpnlb_workers_running\{service="ike"\} 2$/m);
    const st = lab.pool.status();
    assert.equal(st.dataplane, `userspace-relay (${WORKERS} workers)`);
    assert.equal(
      Object.values(st.backends).reduce((n, b) => n + (b.flows ?? 0), 0),
      24,
      'the status adds up the flows of both workers',
    );
  });

  it('an IKE SA whose client moves to an address another worker serves stays on its server (even a draining one)', async () => {
    const [from] = addressesOf('127.1.42', 0, 1);
    const [to] = addressesOf('127.1.43', 1, 1);
    const r = await lab.client(from!);
    assert.equal(r.ok, true, `${r.reason} ${r.detail}`);
    const server = lab.serverOf(r);
    assert.ok(server);
    // Draining: the server keeps its SAs but gets no new one, so only the session that worker 0
    // shared can bring the moved client back to it (placed afresh, it would go elsewhere).
    lab.controller.setAdminState(server, 'draining');
    await sleep(300);
    const reply = await ikeFrom(lab, to!, r);
    assert.ok(reply, `the SA's IKE from ${to} (worker 1) got no answer: it missed ${server}`);
    assert.equal(classifyNatT(reply).kind, 'ike');
    lab.controller.setAdminState(server, 'enabled');
  });

  it("a killed worker is restarted on the same sockets; the other worker's clients keep working meanwhile", async () => {
    const [victim, survivor] = lab.pool.workers();
    assert.ok(victim?.pid && survivor?.pid);
    const kept = await lab.client(addressesOf('127.1.44', 1, 1)[0]!);
    assert.equal(kept.ok, true);
    process.kill(victim.pid, 'SIGKILL');
    await eventually(() => !lab.pool.workers()[0]!.ready, 'the death to be seen', 5_000);
    const meanwhile = await Promise.all(addressesOf('127.1.45', 1, 3).map((a) => lab.client(a)));
    for (const r of meanwhile)
      assert.equal(r.ok, true, `worker 1's client ${r.localAddress}: ${r.reason} ${r.detail}`);
    assert.ok(await ikeFrom(lab, kept.localAddress, kept), "worker 1's earlier SA still answers");
    await eventually(
      () => lab.pool.workers().every((w) => w.ready) && lab.pool.workers()[0]!.pid !== victim.pid,
      'the worker to be restarted',
      15_000,
    );
    const back = await Promise.all(addressesOf('127.1.46', 0, 3).map((a) => lab.client(a)));
    for (const r of back)
      assert.equal(r.ok, true, `worker 0's client ${r.localAddress}: ${r.reason} ${r.detail}`);
    await eventually(
      () => (lab.pool.workers()[0]?.served ?? 0) === 6,
      'the new worker 0 to serve its three clients',
      5_000,
    );
    assert.match(await lab.metrics.text(), /^vpnlb_workers_restarts_total\{service="ike"\} 1$/m);
  });
});
