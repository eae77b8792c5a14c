/**
 * One CLI command: its name, a one-line summary, its usage text, and what it runs. Commands
 * print their results on stdout, diagnostics on stderr, and return the process exit code.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { VpnlbError } from '../errors.js';

export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  run(argv: string[], io: CommandIo): Promise<number>;
}

/** Where commands write (tests capture it). */
export interface CommandIo {
  out(text: string): void;
  err(text: string): void;
}

export const processIo: CommandIo = {
  out: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
  err: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
};

/** `node:util` parseArgs with errors turned into `VPNLB_CLI_USAGE`. */
export function parseCommandArgs<T extends NonNullable<ParseArgsConfig['options']>>(
  command: Command,
  argv: string[],
  options: T,
  allowPositionals = false,
) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    throw new VpnlbError(
      'VPNLB_CLI_USAGE',
      `${(err as Error).message}\nusage: ${command.usage}`,
      'client',
    );
  }
}

/** Throws a usage error unless `value` is present. */
export function required<V>(command: Command, value: V | undefined, what: string): V {
  if (value === undefined || value === '') {
    throw new VpnlbError('VPNLB_CLI_USAGE', `missing ${what}\nusage: ${command.usage}`, 'client');
  }
  return value;
}
