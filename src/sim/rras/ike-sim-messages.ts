/**
 * The messages the simulated RRAS server and the simulated client exchange, built with the
 * project's IKEv2 encoders (src/protocol/ikev2). Their framing is real — header, payload chain,
 * non-ESP marker, ESP-in-UDP — so that the balancer in between handles exactly what it handles
 * in production. Their cryptography is not: vpnlb never decrypts, so the SK payload carries its
 * inner payloads in clear (a real IKE_AUTH carries IDi/AUTH/SAi2/TSi/TSr encrypted; the
 * simulation keeps only SAi2/SAr2, whose ESP SPIs tell each side what to put in its ESP).
 */
import { randomBytes } from 'node:crypto';
import {
  DH_GROUP,
  ENCR,
  IKE_EXCHANGE,
  IKE_FLAG,
  IKE_NOTIFY,
  IKE_PAYLOAD,
  IKE_PROTOCOL,
  IKE_TRANSFORM,
  INTEG,
  PRF,
  buildIkeMessage,
  decodeSaBody,
  encryptedPayload,
  kePayload,
  natDetectionPayloads,
  noncePayload,
  notifyPayload,
  saPayload,
  type IkeEndpoint,
  type IkeMessageOk,
  type IkeProposal,
} from '../../protocol/ikev2/index.js';
import { readU16, readU32, writeU16, writeU32 } from '../../protocol/ikev2/bytes.js';

/** What RRAS offers by default for IKEv2 (AES-256-CBC, SHA-256, ECP-256 is common for AOVPN). */
export const SIM_IKE_PROPOSAL: IkeProposal = {
  protocolId: IKE_PROTOCOL.IKE,
  transforms: [
    { type: IKE_TRANSFORM.ENCR, id: ENCR.AES_CBC, keyLength: 256 },
    { type: IKE_TRANSFORM.PRF, id: PRF.HMAC_SHA2_256 },
    { type: IKE_TRANSFORM.INTEG, id: INTEG.HMAC_SHA2_256_128 },
    { type: IKE_TRANSFORM.DH, id: DH_GROUP.ECP_256 },
  ],
};

/** ECP-256 public values are 64 octets (RFC 5903 §7). */
const ECP_256_KEY_LENGTH = 64;

/** A random non-zero 64-bit SPI (RFC 7296 §3.1: the initiator's SPI MUST NOT be zero). */
export function randomSpi64(): bigint {
  for (;;) {
    const v = randomBytes(8).readBigUInt64BE(0);
    if (v !== 0n) return v;
  }
}

/** A random ESP SPI in 256..2^32-1 (RFC 4303 §2.1: 1–255 are reserved, 0 is the non-ESP marker). */
export function randomEspSpi(): number {
  for (;;) {
    const v = randomBytes(4).readUInt32BE(0);
    if (v >= 256) return v;
  }
}

/** IKE_SA_INIT request (RFC 7296 §1.2): HDR, SAi1, KEi, Ni, N(NAT_DETECTION_*). */
export function saInitRequest(
  spiI: bigint,
  source: IkeEndpoint,
  destination: IkeEndpoint,
): Uint8Array {
  return buildIkeMessage({
    spiI,
    exchange: IKE_EXCHANGE.IKE_SA_INIT,
    flags: IKE_FLAG.INITIATOR,
    payloads: [
      saPayload(SIM_IKE_PROPOSAL),
      kePayload(DH_GROUP.ECP_256, randomBytes(ECP_256_KEY_LENGTH)),
      noncePayload(randomBytes(32)),
      ...natDetectionPayloads({ spiI, spiR: 0n, source, destination }),
    ],
  });
}

/** Transform IDs the simulated server accepts, per transform type (what Windows RRAS offers and accepts by default and more). */
const SUPPORTED: Readonly<Record<number, readonly number[]>> = {
  [IKE_TRANSFORM.ENCR]: [ENCR.AES_CBC, ENCR.AES_GCM_16, ENCR.DES3],
  [IKE_TRANSFORM.PRF]: [PRF.HMAC_SHA1, PRF.HMAC_SHA2_256, PRF.HMAC_SHA2_384, PRF.HMAC_SHA2_512],
  [IKE_TRANSFORM.INTEG]: [
    INTEG.NONE,
    INTEG.HMAC_SHA1_96,
    INTEG.HMAC_SHA2_256_128,
    INTEG.HMAC_SHA2_384_192,
    INTEG.HMAC_SHA2_512_256,
  ],
  [IKE_TRANSFORM.DH]: [DH_GROUP.MODP_1024, DH_GROUP.MODP_2048, DH_GROUP.ECP_256, DH_GROUP.ECP_384],
};

/**
 * RFC 7296 §2.7 / §3.3.6: the responder picks one offered IKE proposal in which, for every
 * transform type present, it supports at least one transform, and answers with exactly one
 * transform of each type. Returns undefined when no proposal is acceptable.
 */
export function chooseProposal(offered: readonly IkeProposal[]): IkeProposal | undefined {
  for (const proposal of offered) {
    if (proposal.protocolId !== IKE_PROTOCOL.IKE) continue;
    const types = [...new Set(proposal.transforms.map((t) => t.type))];
    const chosen = types.map((type) =>
      proposal.transforms.find((t) => t.type === type && (SUPPORTED[type] ?? []).includes(t.id)),
    );
    if (types.length > 0 && chosen.every((t) => t !== undefined)) {
      return { ...proposal, transforms: chosen as IkeProposal['transforms'] };
    }
  }
  return undefined;
}

/**
 * RFC 7296 §2.7: no acceptable proposal → an IKE_SA_INIT response with only
 * N(NO_PROPOSAL_CHOSEN), responder SPI zero, and no state kept on the responder.
 */
export function noProposalChosenResponse(spiI: bigint): Uint8Array {
  return buildIkeMessage({
    spiI,
    spiR: 0n,
    exchange: IKE_EXCHANGE.IKE_SA_INIT,
    flags: IKE_FLAG.RESPONSE,
    payloads: [notifyPayload({ type: IKE_NOTIFY.NO_PROPOSAL_CHOSEN })],
  });
}

/** IKE_SA_INIT response: HDR, SAr1, KEr, Nr, N(NAT_DETECTION_*), with the chosen proposal. */
export function saInitResponse(
  spiI: bigint,
  spiR: bigint,
  chosen: IkeProposal,
  dhGroup: number,
  source: IkeEndpoint,
  destination: IkeEndpoint,
): Uint8Array {
  return buildIkeMessage({
    spiI,
    spiR,
    exchange: IKE_EXCHANGE.IKE_SA_INIT,
    flags: IKE_FLAG.RESPONSE,
    payloads: [
      saPayload({ ...chosen, number: chosen.number ?? 1, spi: new Uint8Array(0) }),
      kePayload(dhGroup, randomBytes(dhGroup === DH_GROUP.ECP_256 ? ECP_256_KEY_LENGTH : 32)),
      noncePayload(randomBytes(32)),
      ...natDetectionPayloads({ spiI, spiR, source, destination }),
    ],
  });
}

/** An ESP proposal carrying the sender's inbound ESP SPI (SAi2 / SAr2, RFC 7296 §1.3). */
function espSaPayloadChain(espSpi: number): Uint8Array {
  const spi = new Uint8Array(4);
  writeU32(spi, 0, espSpi);
  const sa = saPayload({
    protocolId: IKE_PROTOCOL.ESP,
    spi,
    transforms: [
      { type: IKE_TRANSFORM.ENCR, id: ENCR.AES_GCM_16, keyLength: 256 },
      { type: IKE_TRANSFORM.ESN, id: 0 },
    ],
  });
  // One inner payload behind its generic header (Next Payload 0: the last one).
  const inner = new Uint8Array(4 + sa.body.length);
  writeU16(inner, 2, inner.length);
  inner.set(sa.body, 4);
  return inner;
}

/** IKE_AUTH request (message 1) or response, SK{SA with the sender's ESP SPI}. */
export function authMessage(
  spiI: bigint,
  spiR: bigint,
  isResponse: boolean,
  espSpi: number,
): Uint8Array {
  return buildIkeMessage({
    spiI,
    spiR,
    exchange: IKE_EXCHANGE.IKE_AUTH,
    flags: isResponse ? IKE_FLAG.RESPONSE : IKE_FLAG.INITIATOR,
    messageId: 1,
    payloads: [encryptedPayload(IKE_PAYLOAD.SA, espSaPayloadChain(espSpi))],
  });
}

/** The ESP SPI inside a simulated IKE_AUTH's SK payload; undefined if it is not there. */
export function espSpiOfAuth(message: IkeMessageOk): number | undefined {
  const sk = message.payloads.find((p) => p.type === IKE_PAYLOAD.SK);
  if (!sk || sk.innerNextPayload !== IKE_PAYLOAD.SA || sk.body.length < 4) return undefined;
  const length = readU16(sk.body, 2);
  if (length < 4 || length > sk.body.length) return undefined;
  const proposals = decodeSaBody(sk.body.subarray(4, length));
  const spi = proposals?.[0]?.spi;
  return spi && spi.length === 4 ? readU32(spi, 0) : undefined;
}

/** An ESP-in-UDP packet (RFC 3948 §2.1, RFC 4303 §2): SPI, sequence number, opaque payload. */
export function espPacket(spi: number, seq: number, payloadLength = 64): Buffer {
  const b = Buffer.alloc(8 + payloadLength);
  b.writeUInt32BE(spi, 0);
  b.writeUInt32BE(seq >>> 0, 4);
  randomBytes(payloadLength).copy(b, 8);
  return b;
}
