/**
 * A farm of simulated RRAS IKEv2 servers on consecutive loopback addresses that all listen on
 * the SAME two ports (a balancer service has one backendIkePort / backendNatTPort for the whole
 * pool, as a real farm does). The ports are ephemeral: the first server picks them, the others
 * bind the same numbers on their own addresses; on a collision the whole farm retries.
 */
import { IkeResponder, type IkeResponderOptions } from './ike-responder.js';

export interface SimFarmOptions {
  /** Addresses of the servers (e.g. 127.0.20.1, .2, .3). */
  readonly addresses: readonly string[];
  /** Names (default rras1, rras2...). */
  readonly names?: readonly string[];
  readonly responder?: Omit<IkeResponderOptions, 'name' | 'address' | 'ikePort' | 'natTPort'>;
}

export interface SimFarm {
  readonly servers: readonly IkeResponder[];
  readonly ikePort: number;
  readonly natTPort: number;
  close(): Promise<void>;
}

export async function startSimFarm(options: SimFarmOptions): Promise<SimFarm> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 10; attempt++) {
    const servers: IkeResponder[] = [];
    try {
      let ikePort = 0;
      let natTPort = 0;
      for (let i = 0; i < options.addresses.length; i++) {
        const server = await IkeResponder.start({
          ...options.responder,
          name: options.names?.[i] ?? `rras${i + 1}`,
          address: options.addresses[i]!,
          ikePort,
          natTPort,
        });
        servers.push(server);
        if (i === 0) ({ ike: ikePort, natT: natTPort } = server.ports());
      }
      return {
        servers,
        ikePort,
        natTPort,
        close: async () => {
          await Promise.all(servers.map((s) => s.close()));
        },
      };
    } catch (err) {
      lastError = err;
      await Promise.all(servers.map((s) => s.close()));
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}
