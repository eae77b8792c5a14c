/**
 * IKEv2 wire constants (RFC 7296 and the extensions vpnlb meets on the wire). Values are the
 * IANA "Internet Key Exchange Version 2 (IKEv2) Parameters" registry numbers.
 */

// RFC 7296 §3.1: the fixed header is 28 octets.
/** Length of the IKE header (RFC 7296 §3.1). */
export const IKE_HEADER_LENGTH = 28;

/**
 * Largest IKE message vpnlb accepts: the largest UDP payload (65535 − 8-octet UDP header).
 * RFC 7296 sets no maximum of its own; RFC 8229 (IKE over TCP) frames with a 16-bit length too.
 */
export const IKE_MAX_MESSAGE_LENGTH = 65535 - 8;

/** Byte offsets of the RFC 7296 §3.1 header fields (the nftables renderer hashes SPIi at 0). */
export const IKE_HEADER_OFFSETS = {
  SPI_I: 0,
  SPI_R: 8,
  NEXT_PAYLOAD: 16,
  VERSION: 17,
  EXCHANGE_TYPE: 18,
  FLAGS: 19,
  MESSAGE_ID: 20,
  LENGTH: 24,
} as const;

// RFC 7296 §3.1: "Implementations based on this version of IKE MUST set the major version to 2".
/** The only major version vpnlb parses. */
export const IKE_MAJOR_VERSION = 2;

/** Exchange types (RFC 7296 §3.1; IKE_INTERMEDIATE is RFC 9242). 0–33 are reserved. */
export const IKE_EXCHANGE = {
  IKE_SA_INIT: 34,
  IKE_AUTH: 35,
  CREATE_CHILD_SA: 36,
  INFORMATIONAL: 37,
  IKE_INTERMEDIATE: 43,
} as const;

/** Name of a known exchange type. */
export type IkeExchangeName = keyof typeof IKE_EXCHANGE;

// RFC 7296 §3.1: "Values 0-33 are reserved" (they were IKEv1's exchange numbers).
/** Lowest exchange type value an IKEv2 message may carry. */
export const IKE_MIN_EXCHANGE_TYPE = 34;

/** Header flag bits (RFC 7296 §3.1). The other five bits MUST be sent as zero and ignored. */
export const IKE_FLAG = {
  /** I: set by the original initiator of the IKE SA. */
  INITIATOR: 0x08,
  /** V: the sender can speak a higher major version. */
  VERSION: 0x10,
  /** R: this message is a response. */
  RESPONSE: 0x20,
} as const;

/** Payload types (RFC 7296 §3.2; SKF is RFC 7383 §2.5). */
export const IKE_PAYLOAD = {
  NONE: 0,
  SA: 33,
  KE: 34,
  IDI: 35,
  IDR: 36,
  CERT: 37,
  CERTREQ: 38,
  AUTH: 39,
  NONCE: 40,
  NOTIFY: 41,
  DELETE: 42,
  VENDOR_ID: 43,
  TSI: 44,
  TSR: 45,
  SK: 46,
  CP: 47,
  EAP: 48,
  SKF: 53,
} as const;

/** Notify message types (RFC 7296 §3.10.1 and the RFCs noted). Below 16384 are errors. */
export const IKE_NOTIFY = {
  UNSUPPORTED_CRITICAL_PAYLOAD: 1,
  INVALID_IKE_SPI: 4,
  INVALID_MAJOR_VERSION: 5,
  INVALID_SYNTAX: 7,
  INVALID_MESSAGE_ID: 9,
  INVALID_SPI: 11,
  NO_PROPOSAL_CHOSEN: 14,
  INVALID_KE_PAYLOAD: 17,
  AUTHENTICATION_FAILED: 24,
  TS_UNACCEPTABLE: 38,
  TEMPORARY_FAILURE: 43,
  INITIAL_CONTACT: 16384,
  NAT_DETECTION_SOURCE_IP: 16388,
  NAT_DETECTION_DESTINATION_IP: 16389,
  COOKIE: 16390,
  USE_TRANSPORT_MODE: 16391,
  MOBIKE_SUPPORTED: 16396, // RFC 4555 §3.1
  REDIRECT_SUPPORTED: 16406, // RFC 5685 §9
  REDIRECT: 16407, // RFC 5685 §9
  REDIRECTED_FROM: 16408, // RFC 5685 §9
  IKEV2_FRAGMENTATION_SUPPORTED: 16430, // RFC 7383 §2.3
  SIGNATURE_HASH_ALGORITHMS: 16431, // RFC 7427 §4
} as const;

// RFC 7296 §3.10.1: "Types in the range 0 - 16383 are intended for reporting errors."
/** Whether a notify message type reports an error (RFC 7296 §3.10.1). */
export function isErrorNotify(type: number): boolean {
  return type < 16384;
}

/** Protocol IDs of proposals and notifies (RFC 7296 §3.3.1, §3.10). */
export const IKE_PROTOCOL = {
  NONE: 0,
  IKE: 1,
  AH: 2,
  ESP: 3,
} as const;

/** Transform types (RFC 7296 §3.3.2). */
export const IKE_TRANSFORM = {
  ENCR: 1,
  PRF: 2,
  INTEG: 3,
  DH: 4,
  ESN: 5,
} as const;

/** Encryption transform IDs (RFC 7296 §3.3.2; GCM is RFC 5282). */
export const ENCR = {
  DES3: 3,
  AES_CBC: 12,
  AES_GCM_16: 20,
} as const;

/** Pseudorandom function transform IDs (RFC 7296 §3.3.2; SHA-2 is RFC 4868). */
export const PRF = {
  HMAC_SHA1: 2,
  HMAC_SHA2_256: 5,
  HMAC_SHA2_384: 6,
  HMAC_SHA2_512: 7,
} as const;

/** Integrity transform IDs (RFC 7296 §3.3.2; SHA-2 is RFC 4868). */
export const INTEG = {
  NONE: 0,
  HMAC_SHA1_96: 2,
  HMAC_SHA2_256_128: 12,
  HMAC_SHA2_384_192: 13,
  HMAC_SHA2_512_256: 14,
} as const;

/** Diffie-Hellman group numbers (RFC 7296 §3.3.2, RFC 3526, RFC 5903, RFC 8031). */
export const DH_GROUP = {
  MODP_1024: 2,
  MODP_2048: 14,
  ECP_256: 19,
  ECP_384: 20,
  CURVE25519: 31,
} as const;

/** Transform attribute types (RFC 7296 §3.3.5). */
export const IKE_ATTRIBUTE = {
  KEY_LENGTH: 14,
} as const;

/** Exchange name of a known exchange type, or undefined for others. */
export function exchangeName(type: number): IkeExchangeName | undefined {
  switch (type) {
    case IKE_EXCHANGE.IKE_SA_INIT:
      return 'IKE_SA_INIT';
    case IKE_EXCHANGE.IKE_AUTH:
      return 'IKE_AUTH';
    case IKE_EXCHANGE.CREATE_CHILD_SA:
      return 'CREATE_CHILD_SA';
    case IKE_EXCHANGE.INFORMATIONAL:
      return 'INFORMATIONAL';
    case IKE_EXCHANGE.IKE_INTERMEDIATE:
      return 'IKE_INTERMEDIATE';
    default:
      return undefined;
  }
}
