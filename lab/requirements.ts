/**
 * What the lab and the integration tests need from the machine, checked before anything starts,
 * each missing piece named with the Debian package that brings it.
 *
 * `requireOrSkip` is how an integration test file decides to skip: without the switch it prints
 * the reason and skips (a developer's laptop, not root); with `VPNLB_REQUIRE_INTEGRATION=1`
 * (set by `.ci/run`) it also registers a failing test, so CI can never go green by skipping
 * the real peers.
 */
import { existsSync } from 'node:fs';
import { test } from 'node:test';

/** The outcome of one availability check. */
export type Availability = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** The environment switch under which a skipped integration test fails the run. */
export const REQUIRE_INTEGRATION_ENV = 'VPNLB_REQUIRE_INTEGRATION';

/** Whether skipping an integration test is an error (CI). */
export function isIntegrationRequired(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[REQUIRE_INTEGRATION_ENV] === '1';
}

/**
 * The first failed check's reason, or `false` when every check passed. A failed check prints
 * `# skipping <label>: <reason>`; under `VPNLB_REQUIRE_INTEGRATION=1` it also registers a test
 * named after the label that fails with the reason.
 */
export function requireOrSkip(label: string, ...checks: readonly Availability[]): string | false {
  const failed = checks.find((c): c is Extract<Availability, { ok: false }> => !c.ok);
  if (!failed) return false;
  console.log(`# skipping ${label}: ${failed.reason}`);
  if (isIntegrationRequired()) {
    test(`${label}: required by ${REQUIRE_INTEGRATION_ENV}=1`, () => {
      throw new Error(`${label} cannot run: ${failed.reason}`);
    });
  }
  return failed.reason;
}

/** A check that a file (a binary, a plugin) exists, naming the package that installs it. */
export function hasFile(path: string, debianPackage: string): Availability {
  return existsSync(path)
    ? { ok: true }
    : { ok: false, reason: `${path} missing (apt-get install ${debianPackage})` };
}

/** A check that the process runs as root. */
export function isRoot(what: string): Availability {
  return process.getuid?.() === 0 ? { ok: true } : { ok: false, reason: `needs root (${what})` };
}
