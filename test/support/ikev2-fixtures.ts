/**
 * Hand-written IKEv2 / NAT-T packets in hex, annotated field by field from RFC 7296 §3 and
 * RFC 3948 §2, for the tests of this folder (and of the data plane / health checks, which may
 * import them). They are written independently of the builder, which a test checks against
 * them. The NAT-D hashes were computed with Python's hashlib over the inputs noted.
 *
 * The peers: client 198.18.0.10:500, server (virtual IP) 198.19.0.1:500.
 */

/** Annotated hex (`//` comments to the end of a line, any white space) to bytes. */
export function hex(text: string): Uint8Array {
  const digits = text.replace(/\/\/[^\n]*/g, '').replace(/\s+/g, '');
  if (!/^([0-9a-fA-F]{2})*$/.test(digits)) throw new Error(`not hex: ${digits}`);
  return new Uint8Array(Buffer.from(digits, 'hex'));
}

/** SPIs used by the fixtures. */
export const FIXTURE_SPI_I = 0x8a3f2c1d5e6b7a90n;
export const FIXTURE_SPI_R = 0x1c2d3e4f50617283n;

// SA payload body shared by the request and the response: one IKE proposal,
// AES-CBC-256 / HMAC-SHA2-256-128 / PRF-HMAC-SHA2-256 / ECP-256.
const SA_BODY = `
  00 00 002c 01 01 00 04          // proposal: last, length 44, #1, IKE, SPI size 0, 4 transforms
  03 00 000c 01 00 000c 800e 0100   // ENCR AES_CBC (12), Key Length (TV 14) = 256
  03 00 0008 03 00 000c             // INTEG HMAC_SHA2_256_128 (12)
  03 00 0008 02 00 0005             // PRF HMAC_SHA2_256 (5)
  00 00 0008 04 00 0013             // DH ECP_256 (19), last transform
`;

/** The Microsoft IKEv2 Vendor ID ("MS NT5 ISAKMPOAKLEY" hash + version 9), as Windows sends it. */
export const MS_VENDOR_ID_HEX = '1e2b516905991c7d7c96fcbfb587e46100000009';

/**
 * IKE_SA_INIT request as a Windows client sends it (shape): SA, KE, Ni, N(NAT_D src),
 * N(NAT_D dst), N(IKEV2_FRAGMENTATION_SUPPORTED), V. 272 octets.
 */
export const IKE_SA_INIT_REQUEST_HEX = `
  8a3f2c1d5e6b7a90                  // SPIi
  0000000000000000                  // SPIr: zero in the first message
  21 20 22 08                       // next SA (33), version 2.0, IKE_SA_INIT (34), flags I
  00000000                          // message ID 0
  00000110                          // length 272
  22 00 0030                        // SA: next KE (34), length 48
  ${SA_BODY}
  28 00 0048 0013 0000              // KE: next Nonce (40), length 72, group 19, reserved
  ${'5a'.repeat(64)}
  29 00 0024                        // Nonce: next Notify (41), length 36
  ${'a1'.repeat(32)}
  29 00 001c 00 00 4004             // N: next Notify, length 28, NAT_DETECTION_SOURCE_IP (16388)
  232fc4e7797cc21a929637be52284b136cea91e9
  29 00 001c 00 00 4005             // N: next Notify, length 28, NAT_DETECTION_DESTINATION_IP (16389)
  5052fd3f1db4661f72182693da4a16852bab432b
  2b 00 0008 00 00 402e             // N: next V (43), length 8, IKEV2_FRAGMENTATION_SUPPORTED (16430)
  00 00 0018                        // V: last, length 24
  ${MS_VENDOR_ID_HEX}
`;

/**
 * The server's IKE_SA_INIT response: SA (the chosen proposal), KE, Nr, N(NAT_D src),
 * N(NAT_D dst), N(IKEV2_FRAGMENTATION_SUPPORTED). 248 octets.
 */
export const IKE_SA_INIT_RESPONSE_HEX = `
  8a3f2c1d5e6b7a90 1c2d3e4f50617283 // SPIi, SPIr chosen by the responder
  21 20 22 20                       // next SA, version 2.0, IKE_SA_INIT, flags R
  00000000 000000f8                 // message ID 0, length 248
  22 00 0030                        // SA: next KE, length 48
  ${SA_BODY}
  28 00 0048 0013 0000              // KE: next Nonce, length 72, group 19
  ${'7c'.repeat(64)}
  29 00 0024                        // Nonce: next Notify, length 36
  ${'3e'.repeat(32)}
  29 00 001c 00 00 4004             // N(NAT_D src) = SHA-1(SPIi|SPIr|198.19.0.1|500)
  b6496e7f8f2373af3b96cf0ca97dfe6132e42ed2
  29 00 001c 00 00 4005             // N(NAT_D dst) = SHA-1(SPIi|SPIr|198.18.0.10|500)
  250f70256052cba08365862b14fe1f40c7a71198
  00 00 0008 00 00 402e             // N(IKEV2_FRAGMENTATION_SUPPORTED), last
`;

/** A stateless COOKIE reply (RFC 7296 §2.6): SPIr stays zero, as strongSwan sends it. 56 octets. */
export const COOKIE_RESPONSE_HEX = `
  8a3f2c1d5e6b7a90 0000000000000000 // SPIi, SPIr zero (no state kept)
  29 20 22 20 00000000 00000038     // next Notify, 2.0, IKE_SA_INIT, R, ID 0, length 56
  00 00 001c 00 00 4006             // N: last, length 28, COOKIE (16390)
  0000000159ec0f7da62b31e43c9ee2a0bd14cd55
`;

/** INVALID_KE_PAYLOAD reply (RFC 7296 §1.2): the responder wants group 14. 38 octets. */
export const INVALID_KE_RESPONSE_HEX = `
  8a3f2c1d5e6b7a90 1c2d3e4f50617283
  29 20 22 20 00000000 00000026     // next Notify, 2.0, IKE_SA_INIT, R, ID 0, length 38
  00 00 000a 00 00 0011 000e        // N: last, length 10, INVALID_KE_PAYLOAD (17), group 14
`;

/** NO_PROPOSAL_CHOSEN reply (RFC 7296 §2.7). 36 octets. */
export const NO_PROPOSAL_RESPONSE_HEX = `
  8a3f2c1d5e6b7a90 0000000000000000
  29 20 22 20 00000000 00000024     // next Notify, 2.0, IKE_SA_INIT, R, ID 0, length 36
  00 00 0008 00 00 000e             // N: last, length 8, NO_PROPOSAL_CHOSEN (14)
`;

/**
 * IKE_AUTH request whose only payload is SK (opaque: 16-octet IV, 48 octets "ciphertext",
 * 16-octet ICV). 112 octets.
 */
export const IKE_AUTH_REQUEST_HEX = `
  8a3f2c1d5e6b7a90 1c2d3e4f50617283
  2e 20 23 08 00000001 00000070     // next SK (46), 2.0, IKE_AUTH (35), I, ID 1, length 112
  23 00 0054                        // SK: first inner payload IDi (35), length 84
  00112233445566778899aabbccddeeff  // IV
  ${'c3'.repeat(48)}
  ${'1f'.repeat(16)}
`;

/** The IKE_AUTH request on UDP 4500 (RFC 3948 §2.2): non-ESP marker, then the message. */
export const IKE_AUTH_4500_HEX = `
  00000000                          // non-ESP marker
  ${IKE_AUTH_REQUEST_HEX}
`;

/** An ESP packet on UDP 4500 (RFC 3948 §2.1): SPI 0xc0ffee01, sequence 7, then data. */
export const ESP_4500_HEX = 'c0ffee01 00000007 0102030405060708090a0b0c0d0e0f10';

/** An IKEv1 Main Mode header (version 1.0, exchange 2): IKEv2 parsers must say bad-version. */
export const IKEV1_HEADER_HEX = `
  8a3f2c1d5e6b7a90 0000000000000000
  01 10 02 00 00000000 0000001c     // next SA (1), version 1.0, Identity Protection (2), length 28
`;

/** Every well-formed IKE message fixture (no marker), by name. */
export const IKE_MESSAGE_FIXTURES: Readonly<Record<string, string>> = {
  'IKE_SA_INIT request': IKE_SA_INIT_REQUEST_HEX,
  'IKE_SA_INIT response': IKE_SA_INIT_RESPONSE_HEX,
  'COOKIE response': COOKIE_RESPONSE_HEX,
  'INVALID_KE_PAYLOAD response': INVALID_KE_RESPONSE_HEX,
  'NO_PROPOSAL_CHOSEN response': NO_PROPOSAL_RESPONSE_HEX,
  'IKE_AUTH request': IKE_AUTH_REQUEST_HEX,
};
