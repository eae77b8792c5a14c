/**
 * The `vpnlb` command line: `vpnlb <command> [options]`. Exit codes: 0 success, 1 the command
 * found a problem (invalid config, failed action), 2 usage error, 70 internal error.
 */
import { VpnlbError } from '../errors.js';
import { processIo, type CommandIo } from './command.js';
import { COMMANDS } from './commands/index.js';

export async function main(argv: string[], io: CommandIo = processIo): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    io.out(help());
    return name ? 0 : 2;
  }
  if (name === 'version' || name === '--version') {
    io.out(VERSION);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    io.err(`vpnlb: unknown command "${name}"\n\n${help()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(`${command.summary}\nusage: ${command.usage}`);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof VpnlbError) {
      io.err(`vpnlb ${name}: ${err.message} [${err.code}]`);
      return err.code === 'VPNLB_CLI_USAGE' ? 2 : 1;
    }
    throw err;
  }
}

export const VERSION = '0.1.0';

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'vpnlb — load balancer for VPN server farms (IKEv2 and SSTP)',
    '',
    'usage: vpnlb <command> [options]     (vpnlb <command> --help for details)',
    '',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
  ].join('\n');
}
