/**
 * The UDP counting sink on the servers' side: an nftables `netdev ingress` chain on srv's veth
 * that counts IKE (non-ESP marker, RFC 3948 §2.2) and ESP-in-UDP datagrams to port 4500 and
 * drops them. It costs the generator core far less than a socket reader (udpsink, which on this
 * machine halves what one core can generate: delivery to a socket + recvmmsg ≈ 1.5 µs/packet),
 * so the generator can outrun the contenders; udpsink is used where a real socket must answer
 * (nothing in the default run needs it).
 */
import type { Namespace } from '../../lab/netns.js';

export interface SinkCounts {
  readonly ike: number;
  readonly esp: number;
}

export class NftUdpSink {
  constructor(
    readonly ns: Namespace,
    readonly ifName: string,
  ) {}

  async install(port = 4500): Promise<void> {
    await this.ns.exec(
      'nft',
      ['-f', '-'],
      `table netdev benchsink {
  counter ikepkts {}
  counter esppkts {}
  chain in {
    type filter hook ingress device "${this.ifName}" priority -500; policy accept;
    udp dport ${port} @th,64,32 0 counter name "ikepkts" drop
    udp dport ${port} counter name "esppkts" drop
  }
}
`,
    );
  }

  async read(): Promise<SinkCounts> {
    const out = await this.ns.exec('nft', [
      '-j',
      'list',
      'counters',
      'table',
      'netdev',
      'benchsink',
    ]);
    const json = JSON.parse(out) as {
      nftables: Array<{ counter?: { name: string; packets: number } }>;
    };
    const get = (n: string) =>
      json.nftables.find((x) => x.counter?.name === n)?.counter?.packets ?? 0;
    return { ike: get('ikepkts'), esp: get('esppkts') };
  }
}
