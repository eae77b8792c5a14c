/**
 * Re-encryption's safety check: RRAS computes SSTP's crypto binding over the hash of the
 * certificate the *client* saw ([MS-SSTP] §3.2.5.2, the Cert Hash of the Crypto Binding
 * attribute), so the server behind a re-encrypting balancer must hold the same certificate as
 * the front; a server with another certificate fails every tunnel after PPP authentication.
 * vpnlb compares the backend's certificate (DER) with the front one and refuses a mismatch.
 */
import { createHash, X509Certificate } from 'node:crypto';
import tls from 'node:tls';

/** SHA-256 of a DER certificate, colon-free lower-case hex. */
export function sha256Hex(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}

/** The DER of the first certificate in a PEM file's text. */
export function pemToDer(pem: string | Buffer): Buffer {
  return new X509Certificate(pem).raw;
}

/** Undefined when equal; otherwise the message recorded as the backend's error. */
export function certificateMismatch(
  frontDer: Uint8Array,
  backendDer: Uint8Array | undefined,
): string | undefined {
  if (!backendDer || backendDer.length === 0) return 'the server presented no certificate';
  if (Buffer.from(frontDer).equals(Buffer.from(backendDer))) return undefined;
  return `certificate differs from the front certificate (front sha256 ${sha256Hex(frontDer)}, server sha256 ${sha256Hex(backendDer)}); RRAS needs the same certificate for SSTP crypto binding`;
}

/**
 * Opens a TLS connection to a backend, reads its certificate and closes. Never throws:
 * `{ ok: false, error }` on connection failure or timeout.
 */
export function fetchServerCertificate(
  host: string,
  port: number,
  options: { timeoutMs: number; servername?: string },
): Promise<{ ok: true; der: Buffer } | { ok: false; error: string }> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: { ok: true; der: Buffer } | { ok: false; error: string }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const socket = tls.connect({
      host,
      port,
      // Only identity matters here, not trust: the comparison with the front DER is the check.
      rejectUnauthorized: false,
      ...(options.servername ? { servername: options.servername } : {}),
    });
    const timer = setTimeout(
      () => finish({ ok: false, error: `no TLS handshake within ${options.timeoutMs} ms` }),
      options.timeoutMs,
    );
    socket.once('secureConnect', () =>
      finish({ ok: true, der: socket.getPeerCertificate().raw ?? Buffer.alloc(0) }),
    );
    socket.once('error', (err) => finish({ ok: false, error: err.message }));
  });
}
