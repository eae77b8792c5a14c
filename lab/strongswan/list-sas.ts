/**
 * Parses `swanctl --list-sas --raw`: one `list-sa event {...}` line per IKE_SA, in vici's
 * raw notation (`name {` opens a section, `key=value` and `key=[a b]` are items, `}` closes).
 */

export type ViciValue = string | readonly string[] | ViciSection;
export interface ViciSection {
  readonly [key: string]: ViciValue;
}

/** One IKE_SA as the lab needs it. */
export interface IkeSaInfo {
  readonly connection: string;
  /** `CONNECTING` (half-open), `ESTABLISHED`, `DELETING`, ... */
  readonly state: string;
  readonly localHost: string;
  readonly localPort: number;
  readonly remoteHost: string;
  readonly remotePort: number;
  /** The peer's IKE identity (the lab's clients use their name). */
  readonly remoteId: string;
  /** Initiator SPI, 16 hex digits. */
  readonly initiatorSpi: string;
  readonly responderSpi: string;
  /** True on the side that started the exchange. */
  readonly initiator: boolean;
  /** Virtual IPs assigned to the peer (server side) or to us (client side). */
  readonly localVips: readonly string[];
  readonly remoteVips: readonly string[];
  readonly children: readonly {
    name: string;
    state: string;
    localTs: readonly string[];
    remoteTs: readonly string[];
  }[];
}

/** Parses one raw vici section body; never throws (malformed input yields what was read). */
export function parseViciRaw(text: string): ViciSection {
  const tokens =
    text.match(/[^\s{}[\]=]+=\[[^\]]*\]|[^\s{}]+=[^\s{}]*|[^\s{}]+(?=\s*\{)|\{|\}/g) ?? [];
  let i = 0;
  const section = (): ViciSection => {
    const out: Record<string, ViciValue> = {};
    while (i < tokens.length) {
      const t = tokens[i++]!;
      if (t === '}') break;
      if (t === '{') continue;
      const eq = t.indexOf('=');
      if (eq > 0) {
        const key = t.slice(0, eq);
        const value = t.slice(eq + 1);
        out[key] = value.startsWith('[') ? value.slice(1, -1).split(/\s+/).filter(Boolean) : value;
      } else if (tokens[i] === '{') {
        i++;
        out[t] = section();
      }
    }
    return out;
  };
  return section();
}

function str(v: ViciValue | undefined): string {
  return typeof v === 'string' ? v : '';
}
function list(v: ViciValue | undefined): readonly string[] {
  return Array.isArray(v) ? (v as readonly string[]) : typeof v === 'string' && v ? [v] : [];
}

/** Parses the whole output of `swanctl --list-sas --raw`. */
export function parseListSas(output: string): IkeSaInfo[] {
  const sas: IkeSaInfo[] = [];
  for (const line of output.split('\n')) {
    const m = /^list-sa event (\{.*\})\s*$/.exec(line.trim());
    if (!m) continue;
    const root = parseViciRaw(m[1]!);
    for (const [connection, value] of Object.entries(root)) {
      if (typeof value !== 'object' || Array.isArray(value)) continue;
      const sa = value as ViciSection;
      const childSection = sa['child-sas'];
      const children =
        childSection && typeof childSection === 'object' && !Array.isArray(childSection)
          ? Object.values(childSection as ViciSection)
              .filter((c): c is ViciSection => typeof c === 'object' && !Array.isArray(c))
              .map((c) => ({
                name: str(c.name),
                state: str(c.state),
                localTs: list(c['local-ts']),
                remoteTs: list(c['remote-ts']),
              }))
          : [];
      sas.push({
        connection,
        state: str(sa.state),
        localHost: str(sa['local-host']),
        localPort: Number(str(sa['local-port'])),
        remoteHost: str(sa['remote-host']),
        remotePort: Number(str(sa['remote-port'])),
        remoteId: str(sa['remote-id']),
        initiatorSpi: str(sa['initiator-spi']),
        responderSpi: str(sa['responder-spi']),
        initiator: str(sa.initiator) === 'yes',
        localVips: list(sa['local-vips']),
        remoteVips: list(sa['remote-vips']),
        children,
      });
    }
  }
  return sas;
}
