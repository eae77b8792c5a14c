/**
 * [MS-SSTP] constants: the HTTP layer (§2.2.1, §3.2.4.1), packet header (§2.2.2, §2.2.3),
 * control message types (§2.2.9 ff.) and attributes (§2.2.4 ff.).
 */

/** [MS-SSTP] §2.2.1: the URI every SSTP connection posts to (and the health monitor probes). */
export const SSTP_URI = '/sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/';
/** [MS-SSTP] §2.2.1: the method of the request that turns the connection into a tunnel. */
export const SSTP_METHOD = 'SSTP_DUPLEX_POST';
/**
 * [MS-SSTP] §3.2.4.1 / §3.3.5.1: the request and the response carry the largest 64-bit
 * Content-Length (the tunnel never ends as far as HTTP is concerned); HTTP-mode proxies that
 * parse it as a number reject it, which is why vpnlb passes the stream through unparsed.
 */
export const SSTP_CONTENT_LENGTH = '18446744073709551615';
/** The correlation header the client sends (a GUID in braces). */
export const SSTP_CORRELATION_HEADER = 'SSTPCORRELATIONID';

/** [MS-SSTP] §2.2.2: Version 0x10 (major 1, minor 0). */
export const SSTP_VERSION = 0x10;
/** Header: version (1), reserved 7 bits + C bit (1), R 4 bits + Length 12 bits (2). */
export const SSTP_HEADER_LENGTH = 4;
/** Control packets also carry message type (2) and attribute count (2). */
export const SSTP_CONTROL_HEADER_LENGTH = 8;
/** The 12-bit length field's maximum: a whole packet, header included. */
export const SSTP_MAX_PACKET_LENGTH = 0x0fff;

/** [MS-SSTP] §2.2.9: control message types. */
export const SSTP_MSG = {
  CALL_CONNECT_REQUEST: 0x0001,
  CALL_CONNECT_ACK: 0x0002,
  CALL_CONNECT_NAK: 0x0003,
  CALL_CONNECTED: 0x0004,
  CALL_ABORT: 0x0005,
  CALL_DISCONNECT: 0x0006,
  CALL_DISCONNECT_ACK: 0x0007,
  ECHO_REQUEST: 0x0008,
  ECHO_RESPONSE: 0x0009,
} as const;
export type SstpMessageType = (typeof SSTP_MSG)[keyof typeof SSTP_MSG];

/** Names for logs and reports. */
export const SSTP_MSG_NAMES: Readonly<Record<number, string>> = Object.freeze(
  Object.fromEntries(
    Object.entries(SSTP_MSG).map(([k, v]) => [v, k.toLowerCase().replaceAll('_', '-')]),
  ),
);

/** [MS-SSTP] §2.2.4: attribute IDs. */
export const SSTP_ATTRIB = {
  NO_ERROR: 0x00,
  ENCAPSULATED_PROTOCOL_ID: 0x01,
  STATUS_INFO: 0x02,
  CRYPTO_BINDING: 0x03,
  CRYPTO_BINDING_REQ: 0x04,
} as const;

/** [MS-SSTP] §2.2.5: Encapsulated Protocol ID 1 = PPP. */
export const SSTP_ENCAPSULATED_PPP = 0x0001;
/** [MS-SSTP] §2.2.6: hash protocol bitmask bits. */
export const CERT_HASH_PROTOCOL_SHA1 = 0x01;
export const CERT_HASH_PROTOCOL_SHA256 = 0x02;
/** [MS-SSTP] §2.2.6: the Crypto Binding Request attribute is 40 octets (nonce 32). */
export const CRYPTO_BINDING_REQ_LENGTH = 40;
/** [MS-SSTP] §2.2.7: the Crypto Binding attribute is 104 octets (nonce, cert hash, compound MAC: 32 each). */
export const CRYPTO_BINDING_LENGTH = 104;
/** [MS-SSTP] §2.2.8 status values used here. */
export const SSTP_STATUS = {
  ATTRIB_VALUE_NOT_SUPPORTED: 0x00000004,
  NEGOTIATION_TIMEOUT: 0x00000007,
  VALUE_NOT_SUPPORTED: 0x00000008,
} as const;
