/**
 * Chooses and creates the data plane of each service:
 * - SSTP: the userspace TCP/TLS proxy, in `workers` processes when that is more than one;
 *   `dataplane: kernel` (passthrough by source address): nftables DNAT;
 * - IKEv2, `dataplane: kernel`: nftables (needs nft, and CAP_NET_ADMIN for it: root or the ambient set);
 * - IKEv2, `dataplane: userspace`: the UDP relay (full NAT by nature, any machine), in `workers`
 *   processes when that is more than one and the relay's addon is built (it opens the
 *   SO_REUSEPORT groups), else in the main process with a warning;
 * - IKEv2, `dataplane: auto` (default): kernel where nft is present and gets CAP_NET_ADMIN, else userspace,
 *   with a warning when that changes the NAT mode the configuration asked for.
 */
import type { RuntimeContext } from '../control/runtime-context.js';
import type { ServiceSnapshot } from '../control/snapshot.js';
import type { DataPlane } from '../control/dataplane-interface.js';
import { KernelIkeDataPlane, kernelAvailability } from './kernel/kernel-dataplane.js';
import { KernelSstpDataPlane } from './kernel/kernel-sstp-dataplane.js';
import { UdpRelay } from './relay/udp-relay.js';
import { SstpProxy } from './sstp/sstp-proxy.js';
import { WorkerPool } from './workers/worker-pool.js';
import { reuseportUnavailable } from './workers/reuseport-group.js';
import { VpnlbError } from '../errors.js';
import type { Ikev2Service } from '../config/types.js';

export async function createDataPlane(
  snapshot: ServiceSnapshot,
  ctx: RuntimeContext,
): Promise<DataPlane> {
  if (snapshot.kind === 'sstp') {
    if (snapshot.service.dataplane === 'kernel') {
      requireKernel(snapshot.service.name, await kernelAvailable());
      return new KernelSstpDataPlane(snapshot.service, ctx);
    }
    // More than one process: the proxy runs in `workers` processes (src/dataplane/workers/).
    return ctx.config.workers > 1
      ? new WorkerPool({ kind: 'sstp', service: snapshot.service }, ctx, ctx.config.workers)
      : new SstpProxy(snapshot.service, ctx);
  }
  const service = snapshot.service;
  const avail = await kernelAvailable();
  if (service.dataplane === 'kernel') {
    requireKernel(service.name, avail);
    return new KernelIkeDataPlane(service, ctx);
  }
  const choice = chooseAutoIkePlane(service, avail);
  if (choice.warning)
    ctx.logger.warn(
      {
        component: 'dataplane',
        service: service.name,
        ...(avail.ok ? {} : { reason: avail.reason }),
      },
      choice.warning,
    );
  if (choice.plane === 'kernel') return new KernelIkeDataPlane(service, ctx);
  return createRelay(service, ctx);
}

/** The relay, in `workers` processes where that is asked for and possible. */
function createRelay(service: Ikev2Service, ctx: RuntimeContext): DataPlane {
  const asked = ctx.config.workers;
  const choice = relayProcesses(asked, asked > 1 ? reuseportUnavailable() : undefined);
  if (choice.workers > 1) return new WorkerPool({ kind: 'ikev2', service }, ctx, choice.workers);
  if (!choice.warning) return new UdpRelay(service, ctx);
  ctx.logger.warn(
    { component: 'dataplane', service: service.name, workers: asked },
    `${service.name}: ${choice.warning}`,
  );
  return new UdpRelay(service, ctx, { warnings: [choice.warning] });
}

/**
 * How many processes run the relay (pure): `workers` when the SO_REUSEPORT groups can be
 * opened (`unavailable` undefined), else one, with the warning the log and the status give.
 */
export function relayProcesses(
  workers: number,
  unavailable: string | undefined,
): { workers: number; warning?: string } {
  if (workers <= 1 || unavailable === undefined) return { workers };
  return {
    workers: 1,
    warning: `the relay runs in the main process, not in ${workers} workers: ${unavailable}`,
  };
}

/**
 * Where an IKEv2 service of `dataplane: auto` (or `userspace`) runs, and what the administrator
 * must hear about it: the relay is full NAT where the configuration asked for the clients'
 * addresses, and the kernel plane does not shed (`kernelShed` is the relay's).
 */
export function chooseAutoIkePlane(
  service: Pick<Ikev2Service, 'name' | 'dataplane' | 'nat' | 'kernelShed'>,
  avail: { ok: true } | { ok: false; reason: string },
): { plane: 'kernel' | 'relay'; warning?: string } {
  if (service.dataplane !== 'auto') return { plane: 'relay' };
  if (avail.ok)
    return service.kernelShed === 'xdp'
      ? {
          plane: 'kernel',
          warning: `${service.name}: dataplane auto chose the kernel data plane, which forwards in the kernel and does not use kernelShed: xdp (nothing is attached to kernelShedInterfaces); set dataplane: userspace to run the relay with XDP shedding`,
        }
      : { plane: 'kernel' };
  if (service.nat === 'transparent')
    return {
      plane: 'relay',
      warning: `${service.name}: the kernel data plane is unavailable (${avail.reason}); using the userspace relay, which is full NAT: the VPN servers will see the relay's address, not the clients' (expect IKEv2 error 809 under load)`,
    };
  return { plane: 'relay' };
}

/**
 * `kernelAvailability`, asked once per process while it says yes: every kernel service would
 * otherwise run its own `nft list tables`, which on a loaded host can outlast the probe's
 * timeout right after the previous service's 65537-slot transaction (seen: the second of two
 * kernel services refused at start). nft and CAP_NET_ADMIN do not come and go under a process.
 */
let availableOnce: Promise<Awaited<ReturnType<typeof kernelAvailability>>> | undefined;
function kernelAvailable(): ReturnType<typeof kernelAvailability> {
  const p = (availableOnce ??= kernelAvailability());
  void p.then((a) => {
    if (!a.ok && availableOnce === p) availableOnce = undefined;
  });
  return p;
}

/** `dataplane: kernel` was asked for: a clear error when this host cannot give it. */
function requireKernel(
  service: string,
  avail: Awaited<ReturnType<typeof kernelAvailability>>,
): void {
  if (avail.ok) return;
  if (avail.missingCapability)
    throw new VpnlbError(
      'VPNLB_MISSING_CAPABILITY',
      `${service}: dataplane kernel: ${avail.reason}`,
      'internal',
    );
  throw new VpnlbError(
    'VPNLB_DATAPLANE_UNAVAILABLE',
    `${service}: dataplane kernel: ${avail.reason} (use dataplane: userspace to run without it)`,
    'internal',
  );
}
