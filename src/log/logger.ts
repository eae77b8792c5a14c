/**
 * Structured logs (pino, JSON lines on stderr). Every component logs through a child logger
 * with a `component` field so that operators can filter (`jq 'select(.component=="health")'`).
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export interface LoggerOptions {
  readonly level?: string;
  /** Where to write; defaults to stderr (fd 2) so that stdout stays free for command output. */
  readonly destination?: number | NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const dest = options.destination ?? 2;
  const stream = typeof dest === 'number' ? pino.destination({ dest, sync: true }) : dest;
  return pino(
    {
      level: options.level ?? 'info',
      base: { app: 'vpnlb' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    stream,
  );
}

/** A logger that drops everything (tests, `--quiet`). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
