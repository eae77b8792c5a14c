/**
 * Whether this node deserves the addresses, from its own `/api/v1/status` document. Two answers
 * because keepalived treats them differently (render-keepalived.ts): `alive` (the process
 * answers and every data plane applied the current snapshot) gates ownership outright;
 * `backends` (every service has a usable server) only lowers the priority below the peer's.
 */
export interface HealthVerdict {
  readonly alive: { readonly ok: boolean; readonly reason: string };
  readonly backends: { readonly ok: boolean; readonly reason: string };
}

interface StatusLike {
  readonly services?: readonly {
    readonly name: string;
    readonly dataplaneInSync?: boolean;
    readonly backends?: readonly { readonly name: string; readonly state: string }[];
  }[];
}

const OK = Object.freeze({ ok: true, reason: 'ok' });

/** `status` undefined means the admin API did not answer (`error` says why). */
export function evaluateHealth(status: StatusLike | undefined, error?: string): HealthVerdict {
  if (!status) {
    const reason = `vpnlb does not answer: ${error ?? 'no status'}`;
    return { alive: { ok: false, reason }, backends: { ok: false, reason } };
  }
  const services = status.services ?? [];
  const stale = services.filter((s) => s.dataplaneInSync !== true).map((s) => s.name);
  const noServer = services
    .filter((s) => !(s.backends ?? []).some((b) => b.state === 'up'))
    .map((s) => s.name);
  return {
    alive:
      stale.length === 0
        ? OK
        : { ok: false, reason: `data plane not in sync: ${stale.join(', ')}` },
    backends:
      noServer.length === 0
        ? OK
        : { ok: false, reason: `no usable server: ${noServer.join(', ')}` },
  };
}

/** The check file's text (read by check.sh): one line per check. */
export function formatVerdict(v: HealthVerdict): string {
  const line = (name: string, c: { ok: boolean; reason: string }) =>
    `${name} ${c.ok ? 'ok' : `fail ${c.reason}`}`;
  return `${line('alive', v.alive)}\n${line('backends', v.backends)}\n`;
}
