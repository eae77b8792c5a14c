/**
 * An incremental IKE message reader for byte streams: an explicit state machine (as `ws`'s
 * receiver) that accepts chunks of any size, validates the header as soon as its 28 octets are
 * in, and returns the message once its Length octets are in.
 *
 * UDP does not need it: a datagram is one whole message, parse it with `parseIkeHeader`. This
 * reader is for split input (tests feed every fixture one octet at a time) and for IKE over a
 * stream once the caller has removed any framing (RFC 8229 prefixes each message with a 16-bit
 * length and a non-ESP marker; stripping those is the caller's job).
 */
import { IKE_HEADER_LENGTH } from './constants.js';
import {
  countIkeHeaderOutcome,
  decodeIkeHeader,
  type IkeHeader,
  type IkeHeaderInvalid,
} from './ike-header.js';
import type { IkeParseStats } from './parse-stats.js';

/** A whole message: its validated header and its octets (a fresh copy owned by the caller). */
export interface IkeReaderMessage {
  readonly kind: 'ok';
  readonly header: IkeHeader;
  readonly message: Uint8Array;
}

/**
 * What one `push` produced, and how many octets of the chunk it consumed. After `ok` the reader
 * is ready for the next message and `consumed` may be less than the chunk: push the rest.
 * After `invalid` the stream has lost its framing (there is no way to find the next header in
 * a byte stream) and the reader keeps answering `invalid` until `reset()`.
 */
export type IkeReaderResult =
  | (IkeReaderMessage & { readonly consumed: number })
  | { readonly kind: 'need-more'; readonly needed: number; readonly consumed: number }
  | (IkeHeaderInvalid & { readonly consumed: number });

/** Where the reader is: reading a header, reading a body, or stopped on an invalid header. */
export type IkeReaderState = 'header' | 'body' | 'failed';

/** Reads consecutive IKE messages from a byte stream, one chunk at a time. Never throws. */
export class IkeHeaderReader {
  // Immutable.
  readonly #stats: IkeParseStats | undefined;

  // Mutable: the state machine.
  #state: IkeReaderState = 'header';
  /** 28 octets while reading the header, then exactly the message's Length. */
  #buffer = new Uint8Array(IKE_HEADER_LENGTH);
  #filled = 0;
  #header: IkeHeader | undefined;
  #failure: IkeHeaderInvalid | undefined;

  /** `stats`, when given, counts every result returned (`need-more` included). */
  constructor(options: { stats?: IkeParseStats } = {}) {
    this.#stats = options.stats;
  }

  /** The current state: reading a header, reading a body, or failed. */
  get state(): IkeReaderState {
    return this.#state;
  }

  /**
   * Consumes octets from `chunk` (never more than the current message needs; at most
   * `IKE_MAX_MESSAGE_LENGTH` are ever buffered) and reports the current message's progress.
   */
  push(chunk: Uint8Array): IkeReaderResult {
    const result = this.#step(chunk);
    countIkeHeaderOutcome(this.#stats, result);
    return result;
  }

  /** Drops any partial message and failure; the next octet pushed starts a header. */
  reset(): void {
    this.#state = 'header';
    this.#buffer = new Uint8Array(IKE_HEADER_LENGTH);
    this.#filled = 0;
    this.#header = undefined;
    this.#failure = undefined;
  }

  #step(chunk: Uint8Array): IkeReaderResult {
    let consumed = 0;
    if (this.#state === 'failed') return { ...this.#failure!, consumed: 0 };
    if (this.#state === 'header') {
      consumed = this.#fill(chunk, 0);
      if (this.#filled < IKE_HEADER_LENGTH) {
        return { kind: 'need-more', needed: IKE_HEADER_LENGTH - this.#filled, consumed };
      }
      const decoded = decodeIkeHeader(this.#buffer);
      if (decoded.kind === 'invalid') {
        this.#state = 'failed';
        this.#failure = decoded;
        return { ...decoded, consumed };
      }
      // RFC 7296 §3.1: Length covers the header and every payload; decodeIkeHeader bounded it.
      this.#header = decoded.header;
      const whole = new Uint8Array(decoded.header.length);
      whole.set(this.#buffer);
      this.#buffer = whole;
      this.#state = 'body';
    }
    consumed = this.#fill(chunk, consumed);
    if (this.#filled < this.#buffer.length) {
      return { kind: 'need-more', needed: this.#buffer.length - this.#filled, consumed };
    }
    const done: IkeReaderResult = {
      kind: 'ok',
      header: this.#header!,
      message: this.#buffer,
      consumed,
    };
    this.reset();
    return done;
  }

  /** Copies from chunk[offset..] into the buffer up to its size; returns the new chunk offset. */
  #fill(chunk: Uint8Array, offset: number): number {
    const take = Math.min(this.#buffer.length - this.#filled, chunk.length - offset);
    if (take <= 0) return offset;
    this.#buffer.set(chunk.subarray(offset, offset + take), this.#filled);
    this.#filled += take;
    return offset + take;
  }
}
