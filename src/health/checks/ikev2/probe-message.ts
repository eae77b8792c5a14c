/**
 * The IKE_SA_INIT request the `ikev2` monitor sends: one a correct responder must answer, and
 * must answer *without keeping any state*.
 *
 * RFC 7296 §2.7: the responder chooses one of the offered proposals; "If none of the proposals
 * are acceptable, the responder MUST reject them" and (§3.10.1) reports NO_PROPOSAL_CHOSEN. The
 * probe offers a single IKE proposal whose encryption transform ID comes from the private-use
 * range (§3.3.2: 1024–65535, "for private use among mutually consenting parties"), so no server
 * can accept it, whatever its configured suites. An IKE_SA_INIT that is rejected creates no IKE
 * SA: the responder never computed keys (§2.21.1: errors in IKE_SA_INIT are sent in the clear
 * and the request "MUST NOT" lead to state — strongSwan destroys the IKE_SA at once, verified in
 * test/integration/health-strongswan.test.ts with `swanctl --list-sas` and the half-open
 * counters after 1000 probes).
 *
 * The other stateless design (`mismatched-ke`: an acceptable proposal with a KE payload for a
 * group the proposal does not list, answered with INVALID_KE_PAYLOAD, §1.2) depends on knowing a
 * proposal the server accepts; it is kept for the strongSwan comparison test only.
 */
import { randomBytes } from 'node:crypto';
import {
  buildIkeMessage,
  DH_GROUP,
  ENCR,
  IKE_EXCHANGE,
  IKE_FLAG,
  IKE_PROTOCOL,
  IKE_TRANSFORM,
  INTEG,
  kePayload,
  noncePayload,
  PRF,
  saPayload,
  type IkeTransform,
} from '../../../protocol/ikev2/index.js';

/** Encryption transform ID from the private-use range that no responder accepts (RFC 7296 §3.3.2). */
export const PROBE_PRIVATE_ENCR_ID = 0xfd0b;

/** Which rejection the probe provokes. */
export type ProbeMessageVariant = 'unacceptable-proposal' | 'mismatched-ke';

// ECP-256 public value: 64 octets (RFC 5903 §7).
const ECP_256_KE_LENGTH = 64;

/** A random non-zero SPI (RFC 7296 §3.1: the initiator's SPI MUST NOT be zero). */
export function randomSpi(): bigint {
  for (;;) {
    const spi = randomBytes(8).readBigUInt64BE(0);
    if (spi !== 0n) return spi;
  }
}

/** Encodes the probe's IKE_SA_INIT request with initiator SPI `spiI`. */
export function buildProbeMessage(
  spiI: bigint,
  variant: ProbeMessageVariant = 'unacceptable-proposal',
): Uint8Array {
  const common: IkeTransform[] = [
    { type: IKE_TRANSFORM.PRF, id: PRF.HMAC_SHA2_256 },
    { type: IKE_TRANSFORM.INTEG, id: INTEG.HMAC_SHA2_256_128 },
  ];
  const transforms: IkeTransform[] =
    variant === 'unacceptable-proposal'
      ? [
          { type: IKE_TRANSFORM.ENCR, id: PROBE_PRIVATE_ENCR_ID },
          ...common,
          { type: IKE_TRANSFORM.DH, id: DH_GROUP.ECP_256 },
        ]
      : // A widely accepted suite whose groups (Curve25519, MODP-2048) exclude the KE's ECP-256.
        [
          { type: IKE_TRANSFORM.ENCR, id: ENCR.AES_CBC, keyLength: 128 },
          { type: IKE_TRANSFORM.ENCR, id: ENCR.AES_CBC, keyLength: 256 },
          ...common,
          { type: IKE_TRANSFORM.DH, id: DH_GROUP.CURVE25519 },
          { type: IKE_TRANSFORM.DH, id: DH_GROUP.MODP_2048 },
        ];
  return buildIkeMessage({
    spiI,
    exchange: IKE_EXCHANGE.IKE_SA_INIT,
    flags: IKE_FLAG.INITIATOR,
    payloads: [
      saPayload({ protocolId: IKE_PROTOCOL.IKE, transforms }),
      kePayload(DH_GROUP.ECP_256, randomBytes(ECP_256_KE_LENGTH)),
      noncePayload(randomBytes(32)),
    ],
  });
}
