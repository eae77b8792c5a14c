/**
 * A steady ping through one tunnel for the whole chaos run, read line by line so that each
 * request gets a time (`-D`: a timestamp on every line) and a lost one is seen as it happens
 * (`-O`: "no answer yet for icmp_seq=N" when the next request leaves unanswered). The scenario
 * then asks how many requests of a time window went unanswered, per tunnel. It runs until
 * stopped (a loaded machine stretches the run); the request in flight at the stop has no line
 * yet and is counted neither sent nor lost.
 */
import type { ChildProcess } from 'node:child_process';
import type { LabClient } from '../../topology-ike.js';
import { TUNNEL_TARGET_V4, TUNNEL_TARGET_V6 } from '../../strongswan/swanctl-conf.js';

/** One parsed line of `ping -D -O`: a reply or a request that had no answer yet. */
export type PingLine = { readonly seq: number; readonly atMs: number; readonly replied: boolean };

/** Parses one line of `ping -n -D -O` output (IPv4 and IPv6 alike); undefined for other lines. */
export function parsePingLine(line: string): PingLine | undefined {
  const ts = /^\[(\d+(?:\.\d+)?)\]/.exec(line);
  if (!ts) return undefined;
  const atMs = Math.round(Number(ts[1]) * 1000);
  const noAnswer = /no answer yet for icmp_seq=(\d+)/.exec(line);
  if (noAnswer) return { seq: Number(noAnswer[1]), atMs, replied: false };
  const reply = /bytes from .*icmp_seq=(\d+)/.exec(line);
  if (reply) return { seq: Number(reply[1]), atMs, replied: true };
  return undefined;
}

export class TunnelPing {
  readonly client: LabClient;
  /** seq → time of its first line, and whether a reply came (a late reply still counts). */
  readonly #seqs = new Map<number, { atMs: number; replied: boolean }>();
  readonly #child: ChildProcess;
  readonly #closed: Promise<void>;
  #partial = '';

  /** Starts a request every `intervalSec` through the client's tunnel. */
  constructor(client: LabClient, intervalSec: number) {
    this.client = client;
    const target = client.family === 4 ? TUNNEL_TARGET_V4 : TUNNEL_TARGET_V6;
    this.#child = client.ns.spawn('ping', [
      '-n',
      '-D',
      '-O',
      '-i',
      String(intervalSec),
      '-W',
      '1',
      target,
    ]);
    this.#child.stdout?.on('data', (d: Buffer) => {
      const text = this.#partial + d.toString();
      const lines = text.split('\n');
      this.#partial = lines.pop() ?? '';
      for (const line of lines) {
        const p = parsePingLine(line);
        if (p) this.#record(p);
      }
    });
    // 'close', not 'exit': the last lines may still be in the stdout pipe when the process exits.
    this.#closed = new Promise((resolve) => this.#child.once('close', () => resolve()));
  }

  #record(p: PingLine): void {
    const known = this.#seqs.get(p.seq);
    if (!known) this.#seqs.set(p.seq, { atMs: p.atMs, replied: p.replied });
    else if (p.replied) known.replied = true;
  }

  /** Requests first seen in [fromMs, toMs), and how many of them were never answered. */
  window(fromMs: number, toMs: number): { sent: number; lost: number } {
    let sent = 0;
    let lost = 0;
    for (const s of this.#seqs.values()) {
      if (s.atMs < fromMs || s.atMs >= toMs) continue;
      sent++;
      if (!s.replied) lost++;
    }
    return { sent, lost };
  }

  /** Every request with a line: sent, and answered. */
  totals(): { sent: number; received: number } {
    let received = 0;
    for (const s of this.#seqs.values()) if (s.replied) received++;
    return { sent: this.#seqs.size, received };
  }

  /** Stops the ping (SIGINT) and waits for its last lines. */
  async stop(): Promise<void> {
    if (
      this.#child.exitCode === null &&
      this.#child.signalCode === null &&
      this.#child.pid !== undefined
    ) {
      try {
        process.kill(this.#child.pid, 'SIGINT');
      } catch {
        /* already gone */
      }
    }
    await this.#closed;
  }
}
