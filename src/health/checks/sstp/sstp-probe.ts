/**
 * `sstp` monitor: the check the appliance vendors document for RRAS. An anonymous
 * `HEAD /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/` over TLS (or plain HTTP to port 80 when
 * the balancer offloads TLS); RRAS's SSTP listener answers **401** to it (anything else — 200
 * from a web site on the same port, 404, 503 — means the SSTP service is not what answers).
 *
 * Optional: `sni` (sent in the ClientHello and as Host), `verifyCertificate` (chain, expiry and,
 * when `sni` is set, the name) against the system CAs or `ca`. One connection per probe
 * (`agent: false`, `Connection: close`): no pooled socket hides a dead listener.
 */
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Probe, ProbeResult, ProbeTarget } from '../../monitor.js';
import { describeSocketError, settleProbe, targetProblem } from '../settle.js';

// [MS-SSTP] §2.2.2 / §3.2.4.1: the URI every SSTP client uses on the HTTPS layer.
/** The SSTP resource path. */
export const SSTP_PATH = '/sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/';

/** How the `sstp` probe talks to the server. */
export interface SstpProbeOptions {
  /** TLS (passthrough, re-encryption) or plain HTTP (offload: the server's port 80). */
  readonly tls: boolean;
  /** Server name for SNI and the Host header; without it the address is used and no SNI is sent. */
  readonly sni?: string;
  /** Verify the certificate chain (and the name when `sni` is set). Default false. */
  readonly verifyCertificate?: boolean;
  /** Trusted CAs (PEM) for `verifyCertificate`; default the system store. */
  readonly ca?: string | Buffer;
  /** HTTP status that means up; RRAS answers 401 to an anonymous HEAD. Default 401. */
  readonly expectStatus?: number;
}

function hostHeader(target: ProbeTarget, sni: string | undefined): string {
  const host = sni ?? (target.family === 6 ? `[${target.address}]` : target.address);
  return host;
}

/** Creates the `sstp` probe. */
export function createSstpProbe(options: SstpProbeOptions): Probe {
  const expect = options.expectStatus ?? 401;
  const scheme = options.tls ? 'https' : 'http';
  return {
    type: 'sstp',
    probe(target: ProbeTarget, signal: AbortSignal, timeoutMs: number): Promise<ProbeResult> {
      let stage = 'connecting';
      return settleProbe(
        signal,
        timeoutMs,
        (finish) => {
          const problem = targetProblem(target, true);
          if (problem !== undefined || target.port === undefined) {
            finish(false, `sstp probe: ${problem ?? 'no port'}`);
            return;
          }
          const common = {
            host: target.address,
            family: target.family,
            port: target.port,
            method: 'HEAD',
            path: SSTP_PATH,
            agent: false as const,
            headers: {
              Host: hostHeader(target, options.sni),
              Connection: 'close',
              'User-Agent': 'vpnlb-health',
            },
          };
          const onResponse = (res: IncomingMessage) => {
            const status = res.statusCode ?? 0;
            res.resume();
            if (status === expect) finish(true, `${scheme} HEAD ${SSTP_PATH} answered ${status}`);
            else
              finish(
                false,
                `${scheme} HEAD ${SSTP_PATH} answered ${status}, expected ${expect}${status === 200 ? ' (something other than the SSTP listener answers on this port)' : ''}`,
              );
          };
          const req: ClientRequest = options.tls
            ? httpsRequest(
                {
                  ...common,
                  ...(options.sni !== undefined ? { servername: options.sni } : {}),
                  rejectUnauthorized: options.verifyCertificate === true,
                  ...(options.ca !== undefined ? { ca: options.ca } : {}),
                  // Without a name, the name check is skipped; the chain is still verified.
                  ...(options.verifyCertificate === true && options.sni === undefined
                    ? { checkServerIdentity: () => undefined }
                    : {}),
                },
                onResponse,
              )
            : httpRequest(common, onResponse);
          req.once('socket', (socket) => {
            socket.once(
              options.tls ? 'secureConnect' : 'connect',
              () => (stage = 'waiting for the HTTP answer'),
            );
            if (options.tls) socket.once('connect', () => (stage = 'in the TLS handshake'));
          });
          req.on('error', (err) => {
            const e = err as NodeJS.ErrnoException;
            const what = e.code?.startsWith('HPE_')
              ? `not an HTTP answer (${e.code})`
              : e.code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(e.code)
                ? `certificate rejected: ${e.code} (${e.message})`
                : describeSocketError(err);
            finish(false, `${scheme} HEAD ${SSTP_PATH} failed ${stage}: ${what}`);
          });
          req.end();
          return () => req.destroy();
        },
        () => `${scheme} HEAD ${SSTP_PATH}: no answer within ${timeoutMs} ms (${stage})`,
      );
    },
  };
}
