import type { CommandIo } from '../../src/cli/command.js';

/** A command's output captured line by line (`stdout`, `stderr`), for CLI unit tests. */
export function captureIo(): CommandIo & { stdout: string; stderr: string } {
  const io = {
    stdout: '',
    stderr: '',
    out(t: string) {
      io.stdout += `${t}\n`;
    },
    err(t: string) {
      io.stderr += `${t}\n`;
    },
  };
  return io;
}
