/**
 * The data-plane conformance suite (test/support/dataplane-conformance.ts) run against the
 * userspace IKEv2 relay and the SSTP proxy, each with simulated RRAS servers and clients on
 * loopback (no root). The kernel plane runs it in kernel/kernel-dataplane.test.ts.
 */
import { runIkeClient } from '../sim/client/ike-client.js';
import { dataPlaneConformance } from '../../test/support/dataplane-conformance.js';
import { startHarness } from '../../test/support/relay-test-harness.js';
import { startProxyLab } from '../../test/support/sstp-test-lab.js';

const FAST = { retransmitTimeouts: [300, 600, 1200], espTimeout: 1000 } as const;
/** A distinct loopback client address per flow number. */
const clientAddress = (prefix: string, n: number) =>
  `${prefix}.${Math.floor(n / 250)}.${(n % 250) + 1}`;

dataPlaneConformance('userspace IKEv2 relay', async () => {
  const h = await startHarness({
    serverAddresses: ['127.0.71.1', '127.0.71.2', '127.0.71.3'],
    virtualIp: '127.0.72.1',
  });
  return {
    dataplane: h.relay,
    controller: h.controller,
    serviceName: h.serviceName,
    backends: h.farm.servers.map((s) => s.name),
    async openFlow(n) {
      const r = await runIkeClient({
        localAddress: clientAddress('127.73', n),
        server: h.vip,
        ...FAST,
      });
      if (!r.ok) throw new Error(`client ${n}: ${r.reason} ${r.detail}`);
      const [backend, ...more] = h.serversOf(r);
      if (backend === undefined || more.length > 0)
        throw new Error(`client ${n} reached ${h.serversOf(r).join(', ') || 'no server'}`);
      return { backend, alive: async () => (h.relay.status().backends[backend]?.flows ?? 0) > 0 };
    },
    close: () => h.close(),
  };
});

dataPlaneConformance('SSTP proxy', async () => {
  const lab = await startProxyLab({
    backends: [{ name: 'rras1' }, { name: 'rras2' }, { name: 'rras3' }],
    backendAddresses: ['127.0.74.1', '127.0.74.2', '127.0.74.3'],
    virtualIp: '127.0.75.1',
    service: { persistence: 'none' },
  });
  return {
    dataplane: lab.proxy,
    controller: lab.controller,
    serviceName: 'sstp',
    backends: [...lab.sims.keys()],
    async openFlow(n) {
      const before = new Map(
        [...lab.sims].map(([name, sim]) => [name, sim.report().connections.length]),
      );
      const client = await lab.client({ localAddress: clientAddress('127.76', n) });
      const reached = [...lab.sims]
        .filter(([name, sim]) => sim.report().connections.length > (before.get(name) ?? 0))
        .map(([name]) => name);
      const [backend, ...more] = reached;
      if (backend === undefined || more.length > 0)
        throw new Error(`client ${n} reached ${reached.join(', ') || 'no server'}`);
      return {
        backend,
        alive: () =>
          client.echo().then(
            () => true,
            () => false,
          ),
      };
    },
    close: () => lab.close(),
  };
});
