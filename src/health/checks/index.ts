/**
 * Builds the probe of a service's monitor, with the port it aims at:
 * - `ikev2`: the monitor's `port`, else the service's backend IKE port (500 unless overridden);
 * - `sstp`: the monitor's `port`, else the service's backend port (443, or 80 in offload mode,
 *   where the probe speaks plain HTTP like the proxy does);
 * - `tcp`: the monitor's `port` (required by the configuration);
 * - `icmp`: no port.
 */
import { readFileSync } from 'node:fs';
import type { Ikev2Service, Monitor, SstpService } from '../../config/types.js';
import type { Probe } from '../monitor.js';
import { createIcmpProbe } from './icmp/icmp-probe.js';
import { createIkev2Probe } from './ikev2/ikev2-probe.js';
import { createSstpProbe } from './sstp/sstp-probe.js';
import { createTcpProbe } from './tcp/tcp-probe.js';

export { createIcmpProbe, createIkev2Probe, createSstpProbe, createTcpProbe };

/** A probe ready for the backends of one service. */
export interface ServiceProbe {
  readonly probe: Probe;
  /** Port probed on every backend (undefined for icmp). */
  readonly port: number | undefined;
}

/** The probe and port for `monitor` on `service`. Throws only on an unreadable `ca` file (start-up). */
export function createServiceProbe(
  monitor: Monitor,
  service: { kind: 'ikev2'; service: Ikev2Service } | { kind: 'sstp'; service: SstpService },
): ServiceProbe {
  switch (monitor.type) {
    case 'icmp':
      return { probe: createIcmpProbe(), port: undefined };
    case 'tcp':
      return { probe: createTcpProbe(), port: monitor.port };
    case 'ikev2': {
      const port =
        monitor.port ?? (service.kind === 'ikev2' ? service.service.backendIkePort : 500);
      const natTPort = service.kind === 'ikev2' ? service.service.backendNatTPort : 4500;
      return { probe: createIkev2Probe({ natTPort }), port };
    }
    case 'sstp': {
      const isOffload = service.kind === 'sstp' && service.service.mode === 'offload';
      const port =
        monitor.port ??
        (service.kind === 'sstp' ? service.service.backendPort : isOffload ? 80 : 443);
      const probe = createSstpProbe({
        tls: !isOffload,
        ...(monitor.sni !== undefined ? { sni: monitor.sni } : {}),
        verifyCertificate: monitor.verifyCertificate,
        ...(monitor.ca !== undefined ? { ca: readFileSync(monitor.ca) } : {}),
        expectStatus: monitor.expectStatus,
      });
      return { probe, port };
    }
  }
}
