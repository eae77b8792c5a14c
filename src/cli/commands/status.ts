import { parseCommandArgs, type Command } from '../command.js';
import { ADMIN_OPTIONS, ADMIN_USAGE, callAdmin, resolveAdminEndpoint } from './admin-client.js';
import { formatHaStatus } from './ha.js';
import type { HaStatus } from '../../ha/ha-status.js';
import { formatBgpStatus, type BgpStatus } from '../../bgp/bgp-state.js';
import { formatFlowSyncStatus, type FlowSyncStatus } from '../../bgp/flow-sync.js';

interface StatusBody {
  config: string;
  warnings: string[];
  ha?: HaStatus;
  bgp?: BgpStatus & { flowSync?: FlowSyncStatus };
  services: {
    name: string;
    kind: string;
    dataplane: string;
    virtualIp: string;
    backends: {
      name: string;
      address: string;
      state: string;
      reason: string;
      since: string;
      slowStart?: { share: number; until: string };
    }[];
  }[];
}

/** `vpnlb status`: the running balancer's services and backends, in a terminal table. */
export const statusCommand: Command = {
  name: 'status',
  summary: 'show the services and backends of a running balancer',
  usage: `vpnlb status ${ADMIN_USAGE} [--json]`,
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, {
      ...ADMIN_OPTIONS,
      json: { type: 'boolean' },
    });
    const { body } = await callAdmin(
      resolveAdminEndpoint({
        admin: values.admin,
        config: values.config,
        tokenFile: values['token-file'],
      }),
      '/api/v1/status',
    );
    if (values.json) {
      io.out(JSON.stringify(body, null, 2));
      return 0;
    }
    const s = body as StatusBody;
    for (const svc of s.services) {
      io.out(`${svc.name} (${svc.kind}, ${svc.virtualIp}, ${svc.dataplane})`);
      for (const b of svc.backends) {
        const ramp = b.slowStart
          ? `  (slow start: ${Math.round(b.slowStart.share * 100)} % of its weight until ${b.slowStart.until})`
          : '';
        io.out(
          `  ${b.name.padEnd(16)} ${b.address.padEnd(24)} ${b.state.padEnd(9)} since ${b.since}  ${b.reason}${ramp}`,
        );
      }
    }
    if (s.ha) io.out(formatHaStatus(s.ha));
    if (s.bgp) io.out(formatBgpStatus(s.bgp));
    if (s.bgp?.flowSync) io.out(formatFlowSyncStatus(s.bgp.flowSync));
    for (const w of s.warnings) io.out(`warning: ${w}`);
    return 0;
  },
};
