/**
 * The demo's embedded configuration: one simulated RRAS farm, two IKEv2 services on loopback
 * virtual IPs, both on the userspace relay (full NAT, no root):
 * - `ikev2-fullnat`: plain full NAT, every client leaves from the relay's one address;
 * - `ikev2-snatpool`: full NAT through an SNAT pool, capped per (address, server) pair.
 * It is YAML on purpose: the demo goes through the same loader and runtime as `vpnlb run`.
 */

/** Addresses and limits the demo uses (all on 127.0.0.0/8: no root, nothing leaves the host). */
export const DEMO = Object.freeze({
  servers: ['127.0.20.1', '127.0.20.2', '127.0.20.3'] as const,
  vipFullNat: '127.0.10.1',
  vipSnatPool: '127.0.10.2',
  snatAddresses: [
    '127.0.30.1',
    '127.0.30.2',
    '127.0.30.3',
    '127.0.30.4',
    '127.0.30.5',
    '127.0.30.6',
    '127.0.30.7',
    '127.0.30.8',
  ] as const,
  /** Each server accepts at most this many SAs from one source address (Windows-like). */
  perIpLimit: 5,
  /** Clients started per phase. */
  clientsPerPhase: 30,
});

/**
 * The demo's configuration. `kernelShed: off`: the demo stays on loopback and in userspace, so
 * run as root it must not add nftables tables to the host.
 */
export function demoConfigYaml(backendIkePort: number, backendNatTPort: number): string {
  const backends = DEMO.servers
    .map((a, i) => `      - { name: rras${i + 1}, address: ${a} }`)
    .join('\n');
  const common = `      ikePort: 0
      natTPort: 0
      backendIkePort: ${backendIkePort}
      backendNatTPort: ${backendNatTPort}
      pool: rras
      dataplane: userspace
      nat: full
      affinity: ike-spi
      maxFlows: 4096
      kernelShed: off`;
  return `# vpnlb demo: generated, loopback only
log:
  level: warn
pools:
  rras:
    backends:
${backends}
services:
  ikev2:
    - name: ikev2-fullnat
      virtualIp: ${DEMO.vipFullNat}
${common}
    - name: ikev2-snatpool
      virtualIp: ${DEMO.vipSnatPool}
${common}
      snat:
        # cap = the servers' per-source-IP limit: no address can ever be refused
        maxSasPerAddress: ${DEMO.perIpLimit}
        addresses: [${DEMO.snatAddresses.join(', ')}]
`;
}
