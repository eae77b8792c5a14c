/**
 * Which servers hold a client address's live NAT-T flows: the relay's counterpart of the
 * kernel's `peer_<server>` sets (render-ruleset.ts). With `affinity: ike-spi`, a new IKE SA
 * from an address whose NAT-T flows are all on one server joins that server, because its
 * IKE_AUTH and ESP will arrive on the client's existing NAT-T flow (an Always On VPN device
 * tunnel and user tunnel share one), and a flow reaches one server only — unless the address
 * has two or more live NAT-T flows: several devices behind one NAT (a carrier-grade NAT), whose
 * new SAs are placed by SPI so that they spread (the kernel's `natt_shared`). Exact here (flows
 * are counted as they open and close), where the kernel counts conntrack entries with
 * `ct count` and refreshes its set elements by packets.
 */
export class NatTFlowIndex {
  /** address → server name → live NAT-T flows. */
  readonly #byAddress = new Map<string, Map<string, number>>();
  /** address → live NAT-T flows on all servers. */
  readonly #flows = new Map<string, number>();

  /** A NAT-T flow from `address` to `server` opened. */
  add(address: string, server: string): void {
    let servers = this.#byAddress.get(address);
    if (servers === undefined) this.#byAddress.set(address, (servers = new Map()));
    servers.set(server, (servers.get(server) ?? 0) + 1);
    this.#flows.set(address, (this.#flows.get(address) ?? 0) + 1);
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
    const total = this.#flows.get(address) ?? 0;
    if (total > 1) this.#flows.set(address, total - 1);
    else this.#flows.delete(address);
  }

  /** Live NAT-T flows from `address` on all servers (one device has one; two or more: a shared NAT address). */
  flowsOf(address: string): number {
    return this.#flows.get(address) ?? 0;
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
