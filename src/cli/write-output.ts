/**
 * Where a command's generated text goes: stdout, or a file written whole (a temporary file
 * renamed into place), so that a failure leaves nothing half-written and no file at all when
 * the command fails before writing.
 */
import { renameSync, writeFileSync } from 'node:fs';
import type { CommandIo } from './command.js';

export function writeOutput(io: CommandIo, text: string, file: string | undefined): void {
  if (file === undefined || file === '-') {
    io.out(text);
    return;
  }
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}
