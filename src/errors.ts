/**
 * The error catalog: every failure vpnlb reports has a stable code, the side that failed, and
 * an entry in docs/errors.md (a test keeps the two in sync).
 */

/** Which side caused a failure: the client (or the administrator's input), a backend, or vpnlb. */
export type ErrorSide = 'client' | 'backend' | 'internal';

export const ERROR_CODES = {
  VPNLB_CONFIG_INVALID: 'The configuration file has errors (each listed with its path and line).',
  VPNLB_CLI_USAGE: 'A command-line argument is missing or malformed.',
  VPNLB_NO_BACKEND: 'No backend is available for a new client (all down, disabled or draining).',
  VPNLB_ADMIN_LISTEN: 'The admin listener could not bind its address.',
  VPNLB_ADMIN_TOKEN_FILE:
    'An admin token file cannot be read or created, or does not hold a usable token.',
  VPNLB_ADMIN_UNAUTHORIZED: 'An admin request came without a valid token or dashboard session.',
  VPNLB_ADMIN_FORBIDDEN:
    'An admin request was refused: foreign Host (DNS rebinding), cross-site Origin, missing CSRF token, or a read-only token asking for an operator action.',
  VPNLB_ADMIN_BAD_REQUEST:
    'An admin request was malformed (bad URL encoding, body too large, wrong method, unknown route or parameter).',
  VPNLB_LISTEN: 'A service listener could not bind its virtual IP and port.',
  VPNLB_UNKNOWN_BACKEND: 'An admin action named a backend that no pool defines.',
  VPNLB_DATAPLANE_APPLY:
    'The data plane could not apply a snapshot (for example nft rejected the ruleset).',
  VPNLB_DATAPLANE_UNAVAILABLE:
    'The requested data plane cannot run here (for example kernel without nft or nf_tables).',
  VPNLB_KERNEL_TABLE_CONFLICT:
    'Two IKEv2 services of one address family name the same nftables table (set a distinct `table` on each).',
  VPNLB_MISSING_CAPABILITY:
    'vpnlb lacks a Linux capability it needs (CAP_NET_ADMIN, CAP_NET_RAW or CAP_NET_BIND_SERVICE); the message names it.',
  VPNLB_SSTP_TLS_CONFIG:
    'An SSTP service in offload or reencrypt mode cannot load its front certificate or key (tls.cert / tls.key).',
  VPNLB_HA_CONFIG:
    'The pair cannot be set up from this configuration on this host (no `ha` section, or this host is neither node).',
  VPNLB_HA_START: 'keepalived or conntrackd could not be started, or kept exiting.',
  VPNLB_BGP_CONFIG:
    'The node cannot be announced from this configuration on this host (no `bgp` section, or this host is none of its nodes).',
  VPNLB_BGP_START: 'BIRD could not be started or controlled (birdc), or kept exiting.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Base class of every error vpnlb throws on purpose. */
export class VpnlbError extends Error {
  readonly code: ErrorCode;
  readonly side: ErrorSide;
  constructor(code: ErrorCode, message: string, side: ErrorSide, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VpnlbError';
    this.code = code;
    this.side = side;
  }
}
