/**
 * One TLS profile for every TLS-terminating contender (issue 7, fairness): the same
 * certificate (given per run), TLS 1.2 and 1.3 both allowed, the server's cipher order with
 * AES-128-GCM first, the same key-exchange groups (X25519 first, then P-256, P-384), and session
 * tickets at each product's default — on — which is what an administrator gets. The order is
 * vpnlb's own front TLS options (src/dataplane/sstp/sstp-proxy.ts), split into the TLS 1.3
 * suites and the TLS 1.2 cipher list as nginx and HAProxy take them, so a change there reaches
 * the other contenders too.
 */
import { FRONT_TLS_OPTIONS } from '../../src/dataplane/sstp/sstp-proxy.js';

const all = FRONT_TLS_OPTIONS.ciphers.split(':');

export const TLS_PROFILE = {
  /** TLS 1.3 suites, preferred first (OpenSSL `Ciphersuites`). */
  tls13Suites: all.filter((c) => c.startsWith('TLS_')).join(':'),
  /** TLS 1.2 cipher list, preferred first (OpenSSL `CipherString`). */
  tls12Ciphers: all.filter((c) => !c.startsWith('TLS_')).join(':'),
  /** Key-exchange groups, preferred first. */
  groups: FRONT_TLS_OPTIONS.ecdhCurve,
  minVersion: 'TLSv1.2',
  maxVersion: 'TLSv1.3',
} as const;
