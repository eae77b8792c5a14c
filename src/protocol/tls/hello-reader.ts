/**
 * An incremental reader for the first handshake message of a TLS stream (the ClientHello on
 * the client → server direction, the ServerHello on the other): an explicit state machine that
 * accepts chunks of any size, reads record headers across chunk boundaries, and reassembles a
 * handshake message that spans several records (RFC 8446 §5.1: "Handshake messages MAY be
 * coalesced into a single TLSPlaintext record or fragmented across several records").
 *
 * The reader only observes: the caller keeps the chunks and forwards them verbatim. It holds at
 * most one record header and one hello (bounded by `MAX_HELLO_LENGTH`), never throws, and
 * stops at the first definite answer (`ok` or `invalid`); later pushes repeat that answer.
 *
 * Memory follows the octets received, never the length a peer announces: a 9-octet header
 * announcing a 64 KiB hello once made the reader allocate 64 KiB at once, and 3,000 such
 * connections raised the proxy's RSS from 82 MB to 283 MB (issue 11). The body buffer starts
 * at `INITIAL_BODY_CAPACITY` and doubles (capped at the announced length) as octets arrive.
 */
import {
  parseClientHello,
  parseServerHello,
  type ClientHelloInfo,
  type ServerHelloInfo,
} from './hello.js';
import {
  CONTENT_TYPE_ALERT,
  CONTENT_TYPE_HANDSHAKE,
  HANDSHAKE_CLIENT_HELLO,
  HANDSHAKE_HEADER_LENGTH,
  HANDSHAKE_SERVER_HELLO,
  MAX_HELLO_LENGTH,
  MAX_RECORD_LENGTH,
  RECORD_HEADER_LENGTH,
  type TlsInvalid,
  type TlsInvalidCode,
} from './tls-constants.js';

/** First size of the body buffer; real hellos (a few hundred octets to ~2 KiB) fit in one or two doublings. */
export const INITIAL_BODY_CAPACITY = 512;

/** Which hello a reader expects. */
export type HelloKind = 'client-hello' | 'server-hello';

type HelloInfoOf<K extends HelloKind> = K extends 'client-hello'
  ? ClientHelloInfo
  : ServerHelloInfo;

/** The reader's answer after each push. */
export type HelloReadResult<K extends HelloKind> =
  | {
      readonly kind: 'ok';
      readonly hello: HelloInfoOf<K> /** Octets of the stream read up to the end of the hello. */;
      readonly bytesRead: number;
    }
  | { readonly kind: 'need-more'; readonly bytesRead: number }
  | (TlsInvalid & { readonly bytesRead: number });

/** Where the state machine is. */
export type HelloReaderState = 'record-header' | 'record-body' | 'done';

export interface HelloReaderOptions {
  /** Largest hello body accepted (default `MAX_HELLO_LENGTH`, 64 KiB). */
  readonly maxHelloLength?: number;
}

/** Reads the first hello from a TLS byte stream, one chunk at a time. Never throws. */
export class TlsHelloReader<K extends HelloKind> {
  // Immutable.
  readonly kind: K;
  readonly #maxHelloLength: number;

  // Mutable: the state machine.
  #state: HelloReaderState = 'record-header';
  /** The current record header (5 octets) while it is being read. */
  readonly #recordHeader = new Uint8Array(RECORD_HEADER_LENGTH);
  #recordHeaderFilled = 0;
  /** Octets of the current record's fragment not yet read. */
  #recordRemaining = 0;
  #isFirstRecord = true;
  /** The handshake header, then the hello body once its length is known. */
  readonly #handshakeHeader = new Uint8Array(HANDSHAKE_HEADER_LENGTH);
  #handshakeHeaderFilled = 0;
  /** The hello body received so far; grows by doubling as octets arrive (see the file header). */
  #body: Uint8Array | undefined;
  /** The body length the handshake header announced (the buffer never grows beyond it). */
  #bodyLength = 0;
  #bodyFilled = 0;
  #bytesRead = 0;
  #result: HelloReadResult<K> | undefined;

  constructor(kind: K, options: HelloReaderOptions = {}) {
    this.kind = kind;
    this.#maxHelloLength = options.maxHelloLength ?? MAX_HELLO_LENGTH;
  }

  get state(): HelloReaderState {
    return this.#state;
  }

  /** The stream's octets seen so far (all of them until the answer is known). */
  get bytesRead(): number {
    return this.#bytesRead;
  }

  /** Octets of memory the reader holds for the hello body now (grows with octets received). */
  get heldBytes(): number {
    return this.#body?.length ?? 0;
  }

  /** Feeds the next chunk of the stream. */
  push(chunk: Uint8Array): HelloReadResult<K> {
    if (this.#result) return this.#result;
    let i = 0;
    while (i < chunk.length) {
      if (this.#state === 'record-header') {
        const n = Math.min(RECORD_HEADER_LENGTH - this.#recordHeaderFilled, chunk.length - i);
        this.#recordHeader.set(chunk.subarray(i, i + n), this.#recordHeaderFilled);
        this.#recordHeaderFilled += n;
        i += n;
        if (this.#recordHeaderFilled < RECORD_HEADER_LENGTH) break;
        const failure = this.#checkRecordHeader();
        if (failure) return this.#finish(failure.code, failure.detail, i);
        this.#state = 'record-body';
        continue;
      }
      // record-body: feed the fragment to the handshake reassembly.
      const n = Math.min(this.#recordRemaining, chunk.length - i);
      const outcome = this.#handshakeBytes(chunk.subarray(i, i + n));
      i += outcome.used;
      this.#recordRemaining -= outcome.used;
      if (outcome.done) return outcome.done(i);
      if (this.#recordRemaining === 0) {
        this.#state = 'record-header';
        this.#recordHeaderFilled = 0;
      }
    }
    this.#bytesRead += chunk.length;
    return { kind: 'need-more', bytesRead: this.#bytesRead };
  }

  /** The stream ended: a hello still incomplete is `truncated`. */
  end(): HelloReadResult<K> {
    if (this.#result) return this.#result;
    return this.#finish(
      'truncated',
      `stream ended after ${this.#bytesRead} octets, before the hello was complete`,
      0,
    );
  }

  #checkRecordHeader(): { code: TlsInvalidCode; detail: string } | undefined {
    const h = this.#recordHeader;
    const type = h[0] as number;
    const major = h[1] as number;
    const length = ((h[3] as number) << 8) | (h[4] as number);
    if (this.#isFirstRecord) {
      // A stream whose first octets are not a TLS record is not TLS at all (plain HTTP, SSH,
      // an SSLv2-compatible hello whose first octet has the high bit set...).
      if (type === CONTENT_TYPE_ALERT && major === 3)
        return { code: 'alert', detail: 'alert record instead of a hello' };
      if (type !== CONTENT_TYPE_HANDSHAKE || major !== 3) {
        return {
          code: 'not-tls',
          detail: `first octets ${Buffer.from(h).toString('hex')} are not a TLS handshake record`,
        };
      }
    } else if (type === CONTENT_TYPE_ALERT) {
      return { code: 'alert', detail: 'alert record in the middle of the hello' };
    } else if (type !== CONTENT_TYPE_HANDSHAKE) {
      // RFC 8446 §5.1: handshake messages MUST NOT be interleaved with other record types.
      return { code: 'bad-record', detail: `record of type ${type} inside a fragmented hello` };
    }
    // RFC 8446 §5.1: zero-length handshake fragments MUST NOT be sent.
    if (length === 0 || length > MAX_RECORD_LENGTH)
      return { code: 'bad-record', detail: `record length ${length}` };
    this.#isFirstRecord = false;
    this.#recordRemaining = length;
    return undefined;
  }

  /** Consumes handshake octets; returns how many and, when the answer is known, a finisher. */
  #handshakeBytes(bytes: Uint8Array): {
    used: number;
    done?: (consumedOfChunk: number) => HelloReadResult<K>;
  } {
    let used = 0;
    if (this.#body === undefined) {
      const n = Math.min(HANDSHAKE_HEADER_LENGTH - this.#handshakeHeaderFilled, bytes.length);
      this.#handshakeHeader.set(bytes.subarray(0, n), this.#handshakeHeaderFilled);
      this.#handshakeHeaderFilled += n;
      used += n;
      if (this.#handshakeHeaderFilled < HANDSHAKE_HEADER_LENGTH) return { used };
      const hh = this.#handshakeHeader;
      const type = hh[0] as number;
      const length = ((hh[1] as number) << 16) | ((hh[2] as number) << 8) | (hh[3] as number);
      const expected =
        this.kind === 'client-hello' ? HANDSHAKE_CLIENT_HELLO : HANDSHAKE_SERVER_HELLO;
      if (type !== expected) {
        return {
          used,
          done: (at) =>
            this.#finish(
              'unexpected-message',
              `first handshake message has type ${type}, expected ${expected}`,
              at,
            ),
        };
      }
      if (length > this.#maxHelloLength) {
        return {
          used,
          done: (at) =>
            this.#finish(
              'too-large',
              `hello announces ${length} octets (limit ${this.#maxHelloLength})`,
              at,
            ),
        };
      }
      this.#bodyLength = length;
      this.#body = new Uint8Array(Math.min(length, INITIAL_BODY_CAPACITY));
      if (length === 0) return { used, done: (at) => this.#complete(at) };
    }
    const n = Math.min(this.#bodyLength - this.#bodyFilled, bytes.length - used);
    const body = this.#reserve(this.#bodyFilled + n);
    body.set(bytes.subarray(used, used + n), this.#bodyFilled);
    this.#bodyFilled += n;
    used += n;
    if (this.#bodyFilled === this.#bodyLength) return { used, done: (at) => this.#complete(at) };
    return { used };
  }

  /** The body buffer, grown (doubling, at most to the announced length) to hold `needed` octets. */
  #reserve(needed: number): Uint8Array {
    const body = this.#body as Uint8Array;
    if (needed <= body.length) return body;
    let capacity = Math.max(body.length, 1);
    while (capacity < needed) capacity *= 2;
    const grown = new Uint8Array(Math.min(capacity, this.#bodyLength));
    grown.set(body.subarray(0, this.#bodyFilled));
    this.#body = grown;
    return grown;
  }

  #complete(consumedOfChunk: number): HelloReadResult<K> {
    const body = (this.#body ?? new Uint8Array(0)).subarray(0, this.#bodyFilled);
    const parsed = this.kind === 'client-hello' ? parseClientHello(body) : parseServerHello(body);
    this.#body = undefined; // the parsed info holds copies of what it keeps
    this.#state = 'done';
    const bytesRead = this.#bytesRead + consumedOfChunk;
    this.#bytesRead = bytesRead;
    this.#result =
      parsed.kind === 'ok'
        ? { kind: 'ok', hello: parsed.value as HelloInfoOf<K>, bytesRead }
        : { ...parsed, bytesRead };
    return this.#result;
  }

  #finish(code: TlsInvalidCode, detail: string, consumedOfChunk: number): HelloReadResult<K> {
    this.#state = 'done';
    this.#body = undefined;
    this.#bytesRead += consumedOfChunk;
    this.#result = { kind: 'invalid', code, detail, bytesRead: this.#bytesRead };
    return this.#result;
  }
}
