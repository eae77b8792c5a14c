/**
 * Chooses and creates the data plane of each service:
 * - SSTP: the userspace TCP/TLS proxy;
 * - IKEv2, `dataplane: kernel`: nftables (needs nft, and CAP_NET_ADMIN for it: root or the ambient set);
 * - IKEv2, `dataplane: userspace`: the UDP relay (full NAT by nature, any machine);
 * - IKEv2, `dataplane: auto` (default): kernel where nft is present and gets CAP_NET_ADMIN, else userspace,
 *   with a warning when that changes the NAT mode the configuration asked for.
 */
import type { RuntimeContext } from '../control/runtime-context.js';
import type { ServiceSnapshot } from '../control/snapshot.js';
import type { DataPlane } from '../control/dataplane-interface.js';
import { KernelIkeDataPlane, kernelAvailability } from './kernel/kernel-dataplane.js';
import { UdpRelay } from './relay/udp-relay.js';
import { SstpProxy } from './sstp/sstp-proxy.js';
import { VpnlbError } from '../errors.js';

export async function createDataPlane(snapshot: ServiceSnapshot, ctx: RuntimeContext): Promise<DataPlane> {
  if (snapshot.kind === 'sstp') return new SstpProxy(snapshot.service, ctx);
  const service = snapshot.service;
  const avail = await kernelAvailability();
  if (service.dataplane === 'kernel') {
    if (!avail.ok && avail.missingCapability) {
      throw new VpnlbError('VPNLB_MISSING_CAPABILITY', `${service.name}: dataplane kernel: ${avail.reason}`, 'internal');
    }
    if (!avail.ok) {
      throw new VpnlbError('VPNLB_DATAPLANE_UNAVAILABLE', `${service.name}: dataplane kernel: ${avail.reason} (use dataplane: userspace to run without it)`, 'internal');
    }
    return new KernelIkeDataPlane(service, ctx);
  }
  if (service.dataplane === 'auto' && avail.ok) return new KernelIkeDataPlane(service, ctx);
  if (service.dataplane === 'auto' && service.nat === 'transparent') {
    ctx.logger.warn(
      { component: 'dataplane', service: service.name, reason: avail.ok ? '' : avail.reason },
      `${service.name}: the kernel data plane is unavailable (${avail.ok ? '' : avail.reason}); using the userspace relay, which is full NAT: the VPN servers will see the relay's address, not the clients' (expect IKEv2 error 809 under load)`,
    );
  }
  return new UdpRelay(service, ctx);
}
