/**
 * `ikev2` monitor: a stateless IKE_SA_INIT exchange (probe-message.ts). Up when a well-formed
 * IKE_SA_INIT response carrying the probe's initiator SPI comes back — usually
 * NO_PROPOSAL_CHOSEN, but any response proves the IKE service parses and answers. Down on
 * silence, ICMP port unreachable, or only garbage / other SPIs within the timeout.
 *
 * Each probe uses a fresh UDP socket on an ephemeral port (the responder answers to the source
 * port, RFC 7296 §2.11) and a random SPI, so concurrent probes and stray datagrams cannot be
 * mistaken for one another. The socket is `connect`ed so that an ICMP port unreachable surfaces
 * as ECONNREFUSED at once instead of a timeout.
 */
import { createSocket } from 'node:dgram';
import {
  classifyNatT,
  formatSpi,
  IKE_EXCHANGE,
  IKE_NOTIFY,
  isErrorNotify,
  parsePayloads,
  withNonEspMarker,
  type IkeMessageResult,
} from '../../../protocol/ikev2/index.js';
import type { Probe, ProbeResult, ProbeTarget } from '../../monitor.js';
import { describeSocketError, settleProbe, targetProblem } from '../settle.js';
import { buildProbeMessage, randomSpi, type ProbeMessageVariant } from './probe-message.js';

/** Options of the `ikev2` probe (tests only: production uses the defaults). */
export interface Ikev2ProbeOptions {
  readonly variant?: ProbeMessageVariant;
  /** UDP port on which IKE travels behind a non-ESP marker (RFC 3948 §2.2); default 4500. */
  readonly natTPort?: number;
}

const NOTIFY_NAMES = new Map<number, string>(
  Object.entries(IKE_NOTIFY).map(([name, value]) => [value, name]),
);

function notifyName(type: number): string {
  return NOTIFY_NAMES.get(type) ?? `notify ${type}`;
}

/** Classifies one datagram: a response to our probe (with a description) or why not. */
function judge(
  datagram: Uint8Array,
  spiI: bigint,
  isNatT: boolean,
): { ok: true; detail: string } | { ok: false; why: string } {
  let message = datagram;
  if (isNatT) {
    const c = classifyNatT(datagram);
    if (c.kind !== 'ike')
      return {
        ok: false,
        why: `not IKE on the NAT-T port (${c.kind === 'invalid' ? c.code : c.kind})`,
      };
    message = c.message;
  }
  const parsed: IkeMessageResult = parsePayloads(message);
  if (parsed.kind === 'invalid')
    return { ok: false, why: `malformed IKE message (${parsed.code})` };
  const h = parsed.header;
  if (h.spiI !== spiI) return { ok: false, why: `answer for another SPI ${formatSpi(h.spiI)}` };
  if (!h.isResponse || h.exchangeType !== IKE_EXCHANGE.IKE_SA_INIT) {
    return {
      ok: false,
      why: `not an IKE_SA_INIT response (exchange ${h.exchangeType}, flags 0x${h.flags.toString(16)})`,
    };
  }
  const error = parsed.notifies.find((n) => isErrorNotify(n.type));
  if (error) return { ok: true, detail: `IKE_SA_INIT answered with ${notifyName(error.type)}` };
  if (parsed.notifies.some((n) => n.type === IKE_NOTIFY.COOKIE)) {
    return {
      ok: true,
      detail:
        'IKE_SA_INIT answered with a COOKIE challenge (the server is defending against half-open SAs)',
    };
  }
  // A responder that accepted a private-use algorithm kept a half-open SA: still a working
  // IKE service, but the administrator should know.
  return {
    ok: true,
    detail:
      'IKE_SA_INIT answered and the probe proposal accepted (unexpected: the server keeps a half-open SA per probe)',
  };
}

/** Creates the `ikev2` probe. */
export function createIkev2Probe(options: Ikev2ProbeOptions = {}): Probe {
  const natTPort = options.natTPort ?? 4500;
  return {
    type: 'ikev2',
    probe(target: ProbeTarget, signal: AbortSignal, timeoutMs: number): Promise<ProbeResult> {
      let ignored = 0;
      let lastWhy = '';
      return settleProbe(
        signal,
        timeoutMs,
        (finish) => {
          const port = target.port ?? 500;
          const problem = targetProblem({ ...target, port }, true);
          if (problem !== undefined) {
            finish(false, `ikev2 probe: ${problem}`);
            return;
          }
          const isNatT = port === natTPort;
          const spiI = randomSpi();
          const request = buildProbeMessage(spiI, options.variant);
          const socket = createSocket({ type: target.family === 6 ? 'udp6' : 'udp4' });
          let closed = false;
          socket.on('error', (err) =>
            finish(false, `ikev2 probe: port ${port}: ${describeSocketError(err)}`),
          );
          socket.on('message', (msg) => {
            const verdict = judge(msg, spiI, isNatT);
            if (verdict.ok) finish(true, verdict.detail);
            else {
              ignored++;
              lastWhy = verdict.why;
            }
          });
          // The callback also runs (with the error) when the address does not resolve.
          const onConnect = (err?: Error | null) => {
            if (closed) return;
            if (err) {
              finish(false, `ikev2 probe: port ${port}: ${describeSocketError(err)}`);
              return;
            }
            try {
              socket.send(isNatT ? withNonEspMarker(request) : request, (sendErr) => {
                if (sendErr)
                  finish(
                    false,
                    `ikev2 probe: port ${port}: send failed: ${describeSocketError(sendErr)}`,
                  );
              });
            } catch (sendErr) {
              finish(
                false,
                `ikev2 probe: port ${port}: send failed: ${describeSocketError(sendErr)}`,
              );
            }
          };
          socket.connect(port, target.address, onConnect as () => void);
          return () => {
            closed = true;
            try {
              socket.close();
            } catch {
              /* not yet bound or already closed */
            }
          };
        },
        () =>
          `ikev2 probe: no answer within ${timeoutMs} ms` +
          (ignored > 0
            ? ` (${ignored} datagram${ignored > 1 ? 's' : ''} ignored, last: ${lastWhy})`
            : ''),
      );
    },
  };
}
