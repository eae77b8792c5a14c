/**
 * The relay's shedding with an XDP program (a fake addon here; the real one is driven in
 * test/integration/relay-kernel-shed.test.ts): where it sheds, flow and limit changes, drop
 * counters, and the fall-back to nftables when XDP cannot be used.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { Metrics } from '../../observability/metrics.js';
import { createLogger } from '../../log/logger.js';
import type { NftApplier, NftResult } from '../kernel/nft-applier.js';
import { RelayShed } from './relay-shed.js';
import type { NativeXdpShed } from './relay-xdp-shed.js';

class FakeXdp implements NativeXdpShed {
  readonly calls: string[] = [];
  flowError: string | undefined;
  openError: string | undefined;
  mode: 'native' | 'generic' = 'native';
  drops = [0, 0];
  open(family: number, vip: Buffer, ports: number[], maxFlows: number): number {
    if (this.openError) throw new Error(this.openError);
    this.calls.push(`open ${family} ${[...vip].join('.')} ${ports.join(',')} ${maxFlows}`);
    return 3;
  }
  attach(id: number, ifname: string): 'native' | 'generic' {
    this.calls.push(`attach ${id} ${ifname}`);
    return this.mode;
  }
  setLimits(id: number, established: number, unknown: number): void {
    this.calls.push(`limits ${id} ${established} ${unknown}`);
  }
  flow(id: number, add: boolean, address: Buffer, sport: number, dport: number): void {
    if (this.flowError) throw new Error(this.flowError);
    this.calls.push(`${add ? 'add' : 'del'} ${id} ${[...address].join('.')} ${sport} ${dport}`);
  }
  counts(): Float64Array {
    return Float64Array.from(this.drops);
  }
  run(): number {
    throw new Error('the fake runs no program');
  }
  close(id: number): void {
    this.calls.push(`close ${id}`);
  }
}

const applied: string[] = [];
const nftOk: NftApplier = {
  apply: async (text: string): Promise<NftResult> => {
    applied.push(text);
    return { ok: true, value: undefined };
  },
  list: async (): Promise<NftResult<unknown>> => ({ ok: true, value: { nftables: [] } }),
  deleteTable: async (): Promise<NftResult<boolean>> => ({ ok: true, value: true }),
};

function setup(xdp: FakeXdp, overflows: number[] = []) {
  let log = '';
  const logger = createLogger({
    level: 'info',
    destination: new Writable({
      write(chunk, _enc, cb) {
        log += chunk.toString();
        cb();
      },
    }),
  });
  const metrics = new Metrics();
  const shed = new RelayShed({
    mode: 'xdp',
    serviceName: 'ike',
    family: 4,
    virtualIp: '198.19.0.1',
    maxNewFlowsPerSecond: 50,
    interfaces: ['eth0', 'eth1'],
    maxFlows: 1000,
    logger,
    metrics,
    availability: async () => ({ ok: true }),
    nft: nftOk,
    xdp,
    overflows: async () => overflows.shift() ?? 0,
    tickMs: 3_600_000,
  });
  return { shed, metrics, log: () => log };
}

test('kernelShed: xdp attaches to every interface, keeps flows and the limit in the kernel, counts drops each tick', async () => {
  const xdp = new FakeXdp();
  const { shed, metrics, log } = setup(xdp, [0, 500]);
  let forwarded = 0;
  await shed.start([500, 4500], () => forwarded);
  assert.deepEqual(xdp.calls, [
    'open 4 198.19.0.1 500,4500 1000',
    'attach 3 eth0',
    'attach 3 eth1',
    'limits 3 0 200', // no limit for established flows yet; strangers: 4 × maxNewFlowsPerSecond
  ]);
  assert.match(
    log(),
    /flood shedding in the kernel active \(XDP on eth0 \(native\), eth1 \(native\)\)/,
  );
  assert.deepEqual(shed.status(), {
    active: true,
    where: 'XDP on eth0 (native), eth1 (native)',
    established: 0,
    dropped: { established: 0, unknown: 0 },
  });

  shed.flowReady('198.18.1.2', 40500, 500);
  shed.flowReady('198.18.1.2', 40500, 500); // twice: one kernel change
  shed.flowGone('198.18.1.2', 40500, 500);
  assert.deepEqual(xdp.calls.slice(4), [
    'add 3 198.18.1.2 40500 500',
    'del 3 198.18.1.2 40500 500',
  ]);

  // An overflowing tick sets the established flows' limit; the drops are read every tick.
  xdp.drops = [7, 1234];
  forwarded = 100;
  await shed.tick();
  const limit = shed.status().limit;
  assert.ok(limit !== undefined && limit >= 200, `a limit, at least the floor (${limit})`);
  assert.equal(xdp.calls.at(-1), `limits 3 ${limit} 200`);
  assert.match(
    await metrics.text(),
    /^vpnlb_relay_shed_dropped_total\{service="ike",class="unknown"\} 1234$/m,
  );
  await shed.stop();
  assert.equal(xdp.calls.at(-1), 'close 3');
  assert.equal(shed.status().active, false);
});

test('kernelShed: xdp falls back to nftables, and says why, when the program cannot be loaded', async () => {
  const xdp = new FakeXdp();
  xdp.openError = 'the kernel refused the program: Operation not permitted';
  const { shed, log } = setup(xdp);
  await shed.start([500, 4500], () => 0);
  const st = shed.status();
  assert.equal(st.active, true);
  assert.equal(st.where, 'nftables table inet vpnlb_shed_ike');
  assert.equal(st.xdpFallback, 'the kernel refused the program: Operation not permitted');
  assert.match(
    log(),
    /XDP flood shedding unavailable: the kernel refused the program: Operation not permitted; shedding with nftables instead/,
  );
  await shed.stop();
});

test('kernelShed: xdp on a driver without native XDP runs in generic mode and warns', async () => {
  const xdp = new FakeXdp();
  xdp.mode = 'generic';
  const { shed, log } = setup(xdp);
  await shed.start([500, 4500], () => 0);
  assert.equal(shed.status().where, 'XDP on eth0 (generic), eth1 (generic)');
  assert.match(log(), /eth0, eth1 have no native XDP: the program runs in generic mode/);
  await shed.stop();
});

test('kernelShed: xdp removes a shedding table left by an earlier nftables run, and reports refused flow changes', async () => {
  const xdp = new FakeXdp();
  const { shed, log } = setup(xdp);
  applied.length = 0;
  await shed.start([500, 4500], () => 0);
  assert.deepEqual(applied, ['delete table inet vpnlb_shed_ike\n']);
  assert.match(log(), /removed the nftables table inet vpnlb_shed_ike left by an earlier run/);
  xdp.flowError = 'cannot add a flow: Argument list too long (the flows map is full)';
  shed.flowReady('198.18.1.2', 40500, 500);
  await shed.tick();
  assert.equal(shed.status().flowErrors, 1);
  assert.equal(shed.status().established, 0);
  assert.match(
    log(),
    /the kernel refused 1 established flow change\(s\) \(those flows count as strangers\): cannot add a flow: Argument list too long \(the flows map is full\)/,
  );
  await shed.stop();
});
