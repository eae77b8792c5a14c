/**
 * One start-up log line saying which user vpnlb runs as and which of the capabilities it needs
 * it (and its helper programs) hold: the first thing to read when a data plane reports
 * VPNLB_MISSING_CAPABILITY (docs/operations.md, "Privileges").
 */
import type { Logger } from '../log/logger.js';
import {
  CAPABILITY_BITS,
  describeMask,
  helperReceives,
  holds,
  readProcessCapabilities,
  type CapabilityName,
} from './capabilities.js';

export function logPrivileges(logger: Logger): void {
  const caps = readProcessCapabilities();
  if (!caps) return;
  const all = Object.keys(CAPABILITY_BITS) as CapabilityName[];
  const missing = all.filter((c) => !holds(caps, c) || !helperReceives(caps, c));
  logger.info(
    {
      component: 'privileges',
      uid: caps.uid,
      effective: describeMask(caps.effective),
      ambient: describeMask(caps.ambient),
      bounding: describeMask(caps.bounding),
    },
    `running as uid ${caps.uid}: capabilities ${describeMask(caps.effective)}${caps.uid === 0 ? '' : `, passed to helpers (ambient) ${describeMask(caps.ambient)}`}` +
      (missing.length > 0
        ? `; not held: ${missing.join(', ')} (what needs them reports VPNLB_MISSING_CAPABILITY or a down monitor)`
        : ''),
  );
}
