/** Every CLI command, in the order `vpnlb help` lists them. */
import type { Command } from '../command.js';
import { backendCommand } from './backend.js';
import { bgpCommand } from './bgp.js';
import { checkCommand } from './check.js';
import { demoCommand } from './demo.js';
import { exportCommand } from './export.js';
import { haCommand } from './ha.js';
import { labCommand } from './lab.js';
import { nodeCommand } from './node.js';
import { probeCommand } from './probe.js';
import { rrasCommand } from './rras.js';
import { reloadCommand } from './reload.js';
import { runCommand } from './run.js';
import { sstpOffloadHashCommand } from './sstp-offload-hash.js';
import { statusCommand } from './status.js';
import { stopCommand } from './stop.js';
import { whichCommand } from './which.js';

export const COMMANDS: readonly Command[] = [
  runCommand,
  checkCommand,
  whichCommand,
  statusCommand,
  reloadCommand,
  stopCommand,
  backendCommand,
  haCommand,
  bgpCommand,
  nodeCommand,
  probeCommand,
  demoCommand,
  labCommand,
  sstpOffloadHashCommand,
  exportCommand,
  rrasCommand,
];
