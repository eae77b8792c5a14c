/**
 * The HTTP layer of SSTP ([MS-SSTP] §3.2.4.1, §3.3.5.1): the client's `SSTP_DUPLEX_POST`
 * request, the server's `200` answer, and the anonymous `HEAD` that RRAS answers with 401
 * (what the health monitor expects). After the blank line that ends the heads, the connection
 * carries SSTP packets in both directions until it closes: there is no HTTP body framing.
 *
 * `HttpHeadReader` collects a request or response head across chunks (bounded), and returns
 * the octets after it, which already belong to the SSTP stream. Never throws.
 */
import {
  SSTP_CONTENT_LENGTH,
  SSTP_CORRELATION_HEADER,
  SSTP_METHOD,
  SSTP_URI,
} from './sstp-constants.js';

/** A parsed request or response head. Header names are lower-cased; the last value wins. */
export interface HttpHead {
  /** Request: method, target, version. Response: version, status, reason. */
  readonly startLine: readonly [string, string, string];
  readonly headers: ReadonlyMap<string, string>;
}

export type HttpHeadResult =
  | {
      readonly kind: 'ok';
      readonly head: HttpHead /** Octets after the head (the start of the SSTP stream). */;
      readonly rest: Uint8Array;
    }
  | { readonly kind: 'need-more' }
  | { readonly kind: 'invalid'; readonly code: 'too-large' | 'malformed'; readonly detail: string };

/** Heads larger than this are refused (RRAS's and sstpc's are about 200 octets). */
export const MAX_HTTP_HEAD_LENGTH = 8_192;

const CRLFCRLF = Buffer.from('\r\n\r\n');

/** Reads one HTTP head from a stream. */
export class HttpHeadReader {
  #buffer: Buffer = Buffer.alloc(0);
  #result: HttpHeadResult | undefined;

  constructor(private readonly maxLength = MAX_HTTP_HEAD_LENGTH) {}

  push(chunk: Uint8Array): HttpHeadResult {
    if (this.#result) return this.#result;
    const searchFrom = Math.max(0, this.#buffer.length - 3);
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    const end = this.#buffer.indexOf(CRLFCRLF, searchFrom);
    if (end < 0) {
      if (this.#buffer.length > this.maxLength) {
        return (this.#result = {
          kind: 'invalid',
          code: 'too-large',
          detail: `no end of HTTP head within ${this.maxLength} octets`,
        });
      }
      return { kind: 'need-more' };
    }
    if (end > this.maxLength)
      return (this.#result = {
        kind: 'invalid',
        code: 'too-large',
        detail: `HTTP head of ${end} octets`,
      });
    const parsed = parseHttpHead(this.#buffer.subarray(0, end).toString('latin1'));
    const rest = Uint8Array.from(this.#buffer.subarray(end + 4));
    this.#buffer = Buffer.alloc(0);
    this.#result =
      typeof parsed === 'string'
        ? { kind: 'invalid', code: 'malformed', detail: parsed }
        : { kind: 'ok', head: parsed, rest };
    return this.#result;
  }
}

/** Parses head text (without the final CRLF CRLF); returns an error string when malformed. */
export function parseHttpHead(text: string): HttpHead | string {
  const lines = text.split('\r\n');
  const first = lines[0] ?? '';
  const m = /^(\S+) (\S+)(?: (.*))?$/.exec(first);
  if (!m) return `bad start line ${JSON.stringify(first.slice(0, 80))}`;
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) return `bad header line ${JSON.stringify(line.slice(0, 80))}`;
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { startLine: [m[1] as string, m[2] as string, m[3] ?? ''], headers };
}

/** True when a request head is SSTP's `SSTP_DUPLEX_POST /sra_{...}/` ([MS-SSTP] §3.2.4.1). */
export function isSstpDuplexPost(head: HttpHead): boolean {
  return (
    head.startLine[0] === SSTP_METHOD && head.startLine[1].toLowerCase() === SSTP_URI.toLowerCase()
  );
}

/** The client's request, as sstpc and Windows send it. */
export function buildDuplexPostRequest(options: {
  host: string;
  correlationId?: string;
}): Uint8Array {
  const lines = [
    `${SSTP_METHOD} ${SSTP_URI} HTTP/1.1`,
    `Host: ${options.host}`,
    `${SSTP_CORRELATION_HEADER}: ${options.correlationId ?? '{00000000-0000-0000-0000-000000000000}'}`,
    `Content-Length: ${SSTP_CONTENT_LENGTH}`,
  ];
  return Uint8Array.from(Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'));
}

/** A response head; `Content-Length` is added when given. */
export function buildHttpResponse(
  status: number,
  reason: string,
  headers: Readonly<Record<string, string>> = {},
): Uint8Array {
  const lines = [
    `HTTP/1.1 ${status} ${reason}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  return Uint8Array.from(Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'));
}

/** RRAS's answer to a `SSTP_DUPLEX_POST`: 200 with the same unbounded Content-Length. */
export function buildDuplexPostResponse(date = new Date()): Uint8Array {
  return buildHttpResponse(200, 'OK', {
    'Content-Length': SSTP_CONTENT_LENGTH,
    Server: 'Microsoft-HTTPAPI/2.0',
    Date: date.toUTCString(),
  });
}
