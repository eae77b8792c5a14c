/**
 * IKEv2 on the wire: data-plane parsers (header, NAT-T classification, payload walk) that never
 * throw, an incremental reader for split input, and the message builder used by simulated peers
 * and the IKEv2 health probe. See docs/protocol-ikev2.md.
 */
export * from './constants.js';
export * from './parse-codes.js';
export { IkeParseStats, type IkeParseStatsSnapshot } from './parse-stats.js';
export {
  decodeIkeHeader,
  formatSpi,
  ikeHeaderInvalid,
  parseIkeHeader,
  type IkeHeader,
  type IkeHeaderInvalid,
  type IkeHeaderOk,
  type IkeHeaderResult,
  type IkeNeedMore,
  type IkeParseResult,
} from './ike-header.js';
export {
  IkeHeaderReader,
  type IkeReaderMessage,
  type IkeReaderResult,
  type IkeReaderState,
} from './ike-header-reader.js';
export * from './nat-t.js';
export * from './payloads.js';
export * from './sa-payload.js';
export * from './payload-walker.js';
export * from './build-message.js';
export * from './nat-detection.js';
