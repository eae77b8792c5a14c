/**
 * The process's open-file limit (RLIMIT_NOFILE, soft), which bounds how many sockets the
 * userspace data planes can hold. Node has no getrlimit; Linux publishes the limits in
 * /proc/self/limits (proc(5)).
 */
import { readFileSync } from 'node:fs';

/** The soft open-file limit, or undefined where it cannot be read (not Linux) or is unlimited. */
export function openFileLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}
