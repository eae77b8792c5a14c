/**
 * The simulated RRAS server: what tests and `vpnlb demo` run in place of Windows RRAS.
 * `SimRras` bundles the IKEv2 responder (ike-responder.ts); the SSTP endpoint lives in
 * sstp-endpoint.ts.
 */
import { IkeResponder, type IkeResponderOptions } from './ike-responder.js';

export {
  IkeResponder,
  bindUdp,
  type IkeResponderOptions,
  type IkeResponderStats,
  type SimSaReport,
  type SimPathKind,
} from './ike-responder.js';

export interface SimRrasOptions {
  readonly name: string;
  /** Loopback (or namespace) address of the server, e.g. 127.0.20.1. */
  readonly address: string;
  /** IKEv2 responder settings (ports 0 = ephemeral). */
  readonly ike: Omit<IkeResponderOptions, 'name' | 'address'>;
}

/** One simulated RRAS server. */
export class SimRras {
  readonly name: string;
  readonly address: string;
  readonly ike: IkeResponder;

  private constructor(options: SimRrasOptions, ike: IkeResponder) {
    this.name = options.name;
    this.address = options.address;
    this.ike = ike;
  }

  static async start(options: SimRrasOptions): Promise<SimRras> {
    const ike = await IkeResponder.start({
      ...options.ike,
      name: options.name,
      address: options.address,
    });
    return new SimRras(options, ike);
  }

  async close(): Promise<void> {
    await this.ike.close();
  }
}
