/**
 * vpnlb with exactly the packaged unit's privileges (root, namespaces): user nobody, no_new_privs,
 * CAP_NET_ADMIN + CAP_NET_RAW + CAP_NET_BIND_SERVICE and nothing else (lab/scenarios/
 * least-privilege.ts). Proves that the kernel data plane (nft, conntrack), the userspace relay
 * (UDP 500/4500), the SSTP proxy (TCP 443) and the monitors (ikev2, icmp, sstp) all work that
 * way, and that without one of the three the failure names the capability.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { canUseConntrack } from '../../lab/netns.js';
import { hasFile, requireOrSkip } from '../../lab/requirements.js';
import {
  KERNEL_VIP,
  LAB_UID,
  LB_ADDRESS,
  LeastPrivilegeLab,
  UNIT_CAPABILITIES,
  type PrivilegedRun,
} from '../../lab/scenarios/least-privilege.js';
import { vpnlbArgv } from '../../lab/vpnlb-process.js';
import { describeMask, parseProcStatus } from '../../src/platform/capabilities.js';

const skip = requireOrSkip(
  'least-privilege',
  canUseConntrack(),
  hasFile('/usr/bin/setpriv', 'util-linux'),
  hasFile('/usr/bin/ping', 'iputils-ping'),
);

interface StatusBackend {
  name: string;
  state: string;
  reason: string;
}
interface StatusService {
  name: string;
  dataplane: string;
  dataplaneInSync: boolean;
  backends: StatusBackend[];
}

async function until<T>(
  what: string,
  get: () => Promise<T | undefined>,
  run?: PrivilegedRun,
  ms = 120_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v !== undefined) return v;
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}${run ? `; vpnlb output:\n${run.output().slice(-4000)}` : ''}`,
      );
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function stop(run: PrivilegedRun): Promise<void> {
  if (run.child.exitCode === null && run.child.signalCode === null && run.child.pid)
    run.child.kill('SIGTERM');
  await run.exited;
}

describe("least privilege: vpnlb with the unit's three capabilities, as nobody", {
  skip: skip || undefined,
  timeout: 900_000,
}, () => {
  let lab: LeastPrivilegeLab;
  before(async () => {
    lab = await LeastPrivilegeLab.create();
  });
  after(async () => {
    await lab?.destroy();
  });

  it('runs every data plane and monitor with CAP_NET_ADMIN, CAP_NET_RAW, CAP_NET_BIND_SERVICE only', async () => {
    const run = lab.startVpnlb(UNIT_CAPABILITIES);
    try {
      const services = await until(
        'every backend up in every service',
        async () => {
          const st = (await lab.admin('/api/v1/status')) as
            | { services?: StatusService[] }
            | undefined;
          const svcs = st?.services;
          return svcs &&
            svcs.length === 3 &&
            svcs.every((s) => s.backends.every((b) => b.state === 'up'))
            ? svcs
            : undefined;
        },
        run,
      );
      const byName = new Map(services.map((s) => [s.name, s.dataplane]));
      assert.match(byName.get('ike-kernel') ?? '', /kernel/);
      assert.doesNotMatch(byName.get('ike-relay') ?? 'kernel', /kernel/);

      // The process holds exactly the three, as the lab user, with no_new_privs.
      const status = readFileSync(`/proc/${run.child.pid}/status`, 'utf8');
      const caps = parseProcStatus(status)!;
      assert.equal(caps.uid, LAB_UID);
      assert.equal(describeMask(caps.effective), 'CAP_NET_BIND_SERVICE,CAP_NET_ADMIN,CAP_NET_RAW');
      assert.equal(caps.effective, 0x3400n, 'no capability beyond the three');
      assert.equal(caps.bounding, 0x3400n);
      assert.match(status, /^NoNewPrivs:\s*1$/m);

      // Kernel plane: nftables programmed by the unprivileged process; a client's IKE and ESP
      // go through the DNAT to the server and back.
      const table = await lab.lb.exec('nft', ['list', 'table', 'ip', 'vpnlb']);
      assert.match(table, /dnat/);
      const viaKernel = await lab.ikeClient(KERNEL_VIP);
      assert.ok(viaKernel.ok, `IKEv2 through the kernel data plane: ${JSON.stringify(viaKernel)}`);
      assert.ok(viaKernel.espEchoed > 0);

      // Userspace relay on UDP 500/4500 (CAP_NET_BIND_SERVICE).
      const viaRelay = await lab.ikeClient(LB_ADDRESS);
      assert.ok(viaRelay.ok, `IKEv2 through the relay: ${JSON.stringify(viaRelay)}`);

      // SSTP proxy on TCP 443: the server's 401 comes back through the passthrough.
      const head = await lab.sstpHead();
      assert.match(head.statusLine ?? head.error ?? '', /^HTTP\/1\.1 401/);

      // conntrack (CAP_NET_ADMIN through the ambient set): disabling the server deletes its
      // flows in the kernel; the data plane reports in sync, and no permission error was logged.
      await lab.lb
        .exec('conntrack', ['-L', '-p', 'udp', '--orig-dst', KERNEL_VIP])
        .then((out) => assert.match(out, /dport=4500/));
      const [node, ...args] = vpnlbArgv([
        'backend',
        'disable',
        'rras1',
        '--admin',
        'http://127.0.0.1:8088',
        '--token-file',
        lab.tokenFile,
      ]);
      await lab.lb.exec(node!, args);
      await until(
        'the kernel data plane to apply the disable',
        async () => {
          const st = (await lab.admin('/api/v1/status')) as
            | { services?: StatusService[] }
            | undefined;
          const k = st?.services?.find((s) => s.name === 'ike-kernel');
          return k && k.backends[0]?.state === 'disabled' && k.dataplaneInSync ? true : undefined;
        },
        run,
      );
      const left = await lab.lb
        .exec('conntrack', [
          '-L',
          '-p',
          'udp',
          '--orig-dst',
          KERNEL_VIP,
          '--reply-src',
          '198.18.2.2',
        ])
        .catch((e: Error) => e.message);
      assert.doesNotMatch(left, /dport=/, `flows of the disabled server are left: ${left}`);
      assert.doesNotMatch(run.output(), /Operation not permitted|VPNLB_MISSING_CAPABILITY/);
    } finally {
      await stop(run);
    }
    assert.equal(await run.exited, 0, run.output().slice(-3000));
    // SIGTERM without VPNLB_KEEP_STATE: the unprivileged process removed its table too.
    const tables = await lab.lb.exec('nft', ['list', 'tables']);
    assert.doesNotMatch(tables, /table ip vpnlb/);
  });

  it('without CAP_NET_ADMIN the kernel data plane refuses to start and names it', async () => {
    const run = lab.startVpnlb(['CAP_NET_RAW', 'CAP_NET_BIND_SERVICE']);
    const code = await run.exited;
    assert.notEqual(code, 0);
    assert.match(
      run.output(),
      /ike-kernel: dataplane kernel: vpnlb needs CAP_NET_ADMIN to program nftables.*\[VPNLB_MISSING_CAPABILITY\]/,
    );
  });

  it('without CAP_NET_BIND_SERVICE the listeners on 500/4500/443 cannot bind, and the error names it', async () => {
    const run = lab.startVpnlb(['CAP_NET_ADMIN', 'CAP_NET_RAW']);
    const code = await run.exited;
    assert.notEqual(code, 0);
    assert.match(
      run.output(),
      /ike-relay: cannot listen on UDP 198\.18\.1\.1:500: vpnlb needs CAP_NET_BIND_SERVICE.*\[VPNLB_MISSING_CAPABILITY\]/,
    );
    // The kernel service had been programmed before the relay failed (a later start adopts it).
    await lab.lb.exec('nft', ['delete', 'table', 'ip', 'vpnlb']).catch(() => undefined);
  });

  it('without CAP_NET_RAW vpnlb runs, and the icmp monitor reports its backend down naming CAP_NET_RAW', async () => {
    const run = lab.startVpnlb(['CAP_NET_ADMIN', 'CAP_NET_BIND_SERVICE']);
    try {
      const backend = await until(
        'the icmp-monitored backend to be down',
        async () => {
          const st = (await lab.admin('/api/v1/status')) as
            | { services?: StatusService[] }
            | undefined;
          const b = st?.services?.find((s) => s.name === 'ike-relay')?.backends[0];
          return b && b.state === 'down' ? b : undefined;
        },
        run,
      );
      assert.match(backend.reason, /vpnlb needs CAP_NET_RAW to send ICMP echo requests/);
      const st = (await lab.admin('/api/v1/status')) as { services: StatusService[] };
      assert.equal(
        st.services.find((s) => s.name === 'sstp')?.backends[0]?.state,
        'up',
        'the other monitors are unaffected',
      );
    } finally {
      await stop(run);
    }
  });
});
