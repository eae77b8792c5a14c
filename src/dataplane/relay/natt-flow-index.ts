/**
 * Which servers hold a client address's live NAT-T flows: the relay's counterpart of the
 * kernel's `peer_<server>` sets (render-ruleset.ts). With `affinity: ike-spi`, a new IKE SA
 * from an address whose NAT-T flows are all on one server joins that server, because its
 * IKE_AUTH and ESP will arrive on the client's existing NAT-T flow (an Always On VPN device
 * tunnel and user tunnel share one), and a flow reaches one server only. Exact here (flows are
 * counted as they open and close), where the kernel can only refresh set elements by packets.
 */
export class NatTFlowIndex {
  /** address → server name → live NAT-T flows. */
  readonly #byAddress = new Map<string, Map<string, number>>();

  /** A NAT-T flow from `address` to `server` opened. */
  add(address: string, server: string): void {
    let servers = this.#byAddress.get(address);
    if (servers === undefined) this.#byAddress.set(address, (servers = new Map()));
    servers.set(server, (servers.get(server) ?? 0) + 1);
  }

  /** A NAT-T flow from `address` to `server` closed. */
  remove(address: string, server: string): void {
    const servers = this.#byAddress.get(address);
    const n = servers?.get(server);
    if (servers === undefined || n === undefined) return;
    if (n > 1) servers.set(server, n - 1);
    else {
      servers.delete(server);
      if (servers.size === 0) this.#byAddress.delete(address);
    }
  }

  /** The servers holding live NAT-T flows from `address` (empty when none). */
  serversOf(address: string): string[] {
    return [...(this.#byAddress.get(address)?.keys() ?? [])];
  }

  /** Addresses with at least one live NAT-T flow. */
  get size(): number {
    return this.#byAddress.size;
  }
}
