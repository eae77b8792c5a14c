/**
 * `tcp` monitor: the backend is up when a TCP connection to the port completes (SYN, SYN-ACK,
 * ACK). The connection is closed at once without sending anything. The cheapest check that the
 * server's listener exists; it proves nothing about the protocol behind it.
 */
import { connect } from 'node:net';
import type { Probe, ProbeResult, ProbeTarget } from '../../monitor.js';
import { describeSocketError, settleProbe, targetProblem } from '../settle.js';

/** Creates the `tcp` probe. */
export function createTcpProbe(): Probe {
  return {
    type: 'tcp',
    probe(target: ProbeTarget, signal: AbortSignal, timeoutMs: number): Promise<ProbeResult> {
      return settleProbe(
        signal,
        timeoutMs,
        (finish) => {
          const problem = targetProblem(target, true);
          if (problem !== undefined || target.port === undefined) {
            finish(false, `tcp probe: ${problem ?? 'no port'}`);
            return;
          }
          const socket = connect({
            host: target.address,
            port: target.port,
            family: target.family,
          });
          socket.once('connect', () =>
            finish(true, `tcp connect to port ${target.port} succeeded`),
          );
          socket.once('error', (err) =>
            finish(false, `tcp connect to port ${target.port} failed: ${describeSocketError(err)}`),
          );
          return () => socket.destroy();
        },
        () => `tcp connect to port ${target.port} not completed within ${timeoutMs} ms`,
      );
    },
  };
}
