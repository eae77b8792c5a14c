/**
 * The checks every admin request passes before any route sees it, and the headers every answer
 * carries. They defend an administrator's browser against other web pages:
 * - DNS rebinding: a page on `evil.example` re-resolves its name to 127.0.0.1 and then talks to
 *   the admin listener as "same origin" — but its requests say `Host: evil.example`. Only IP
 *   addresses, `localhost` and the configured `admin.allowedHosts` are answered (a rebinding
 *   attack needs a DNS name; an IP address cannot be rebound).
 * - Cross-site requests (CSRF): a state change must not come from another origin. Browsers send
 *   `Origin` on every POST (Fetch standard, "origin header") and `Sec-Fetch-Site`; either one
 *   naming another site refuses the request. Requests without them (CLI, curl) still need a token.
 * - Framing (clickjacking) and content sniffing: `frame-ancestors 'none'`, `X-Frame-Options`,
 *   `nosniff`, and a Content-Security-Policy that allows scripts and styles from vpnlb itself
 *   only (no inline script: an injected `<script>` would not run).
 */
import { isIP } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';

const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
});

/** `host`: the request's `Host` header. */
export function setSecurityHeaders(
  res: ServerResponse,
  isTls: boolean,
  host: string | undefined,
): void {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
  // Honoured only on a potentially trustworthy origin (HTML, "cross-origin opener policies");
  // elsewhere Chromium ignores it and logs an error on every page load.
  if (isTrustworthyOrigin(host, isTls)) res.setHeader('cross-origin-opener-policy', 'same-origin');
  // RFC 6797: only meaningful (and only honoured) over HTTPS.
  if (isTls) res.setHeader('strict-transport-security', 'max-age=31536000');
}

/**
 * Whether a browser counts this listener's origin as potentially trustworthy (W3C Secure
 * Contexts §3.1): HTTPS, or a loopback host (127.0.0.0/8, ::1, `localhost` and its subdomains).
 * A dashboard reached over plain HTTP on a network address is not (config warning: no TLS).
 */
export function isTrustworthyOrigin(host: string | undefined, isTls: boolean): boolean {
  if (isTls) return true;
  const name = hostName(host);
  if (name === undefined) return false;
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (isIP(name) === 4) return name.startsWith('127.');
  if (isIP(name) === 6) return new URL(`http://[${name}]/`).hostname === '[::1]';
  return false;
}

/** The host name of a `Host` header value (`name:port`, `[v6]:port`), lower-cased; undefined if malformed. */
export function hostName(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(header.trim());
  if (!m) return undefined;
  return (m[1] ?? m[2])!.toLowerCase();
}

/** True when the request's `Host` may be answered (see the header comment: DNS rebinding). */
export function isAllowedHost(
  header: string | undefined,
  allowedHosts: readonly string[],
): boolean {
  const name = hostName(header);
  if (name === undefined) return false;
  return isIP(name) !== 0 || name === 'localhost' || allowedHosts.includes(name);
}

/**
 * Why a state-changing request looks cross-site, or undefined when it does not: an `Origin`
 * that is not this very listener (scheme and Host), or `Sec-Fetch-Site` other than
 * `same-origin` / `none` (`none`: typed by the user).
 */
export function crossSiteReason(req: IncomingMessage, isTls: boolean): string | undefined {
  const site = req.headers['sec-fetch-site'];
  if (typeof site === 'string' && site !== 'same-origin' && site !== 'none')
    return `Sec-Fetch-Site: ${site}`;
  const origin = req.headers.origin;
  if (origin === undefined) return undefined;
  const expected = `${isTls ? 'https' : 'http'}://${req.headers.host ?? ''}`.toLowerCase();
  if (origin.toLowerCase() !== expected) return `Origin ${origin} is not ${expected}`;
  return undefined;
}

/** The value of one cookie. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

/** The token of an `Authorization: Bearer TOKEN` header (RFC 6750 §2.1). */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header ?? '');
  return m ? m[1] : undefined;
}
