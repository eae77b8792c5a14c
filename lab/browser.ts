/**
 * The dashboard's browser for tests and screenshots: Debian's Chromium, headless, driven by
 * playwright-core (no browser download). With `netns`, Chromium runs inside that network
 * namespace (`ip netns exec`, root): a balancer node of the HA and ECMP labs listens for its
 * admin API on an address that exists only there. playwright-core talks to Chromium over a
 * pipe, which crosses the namespace boundary.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { hasFile, isIntegrationRequired, type Availability } from './requirements.js';

export const CHROMIUM = '/usr/bin/chromium';

/** Whether Debian's Chromium is installed (the check names its package). */
export function chromiumAvailable(): Availability {
  return hasFile(CHROMIUM, 'chromium');
}

/** The flags for a quiet, sandbox-free, network-free headless Chromium. */
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Browser {
  readonly page: Page;
  /** Closes the browser and removes its profile. */
  close(): Promise<void>;
}

export async function launchChromium(o: { netns?: string } = {}): Promise<Browser> {
  const dir = mkdtempSync(join(tmpdir(), 'vpnlb-chromium-'));
  try {
    let executablePath = CHROMIUM;
    if (o.netns !== undefined) {
      if (!/^[\w.-]+$/.test(o.netns)) throw new Error(`bad namespace name ${o.netns}`);
      executablePath = join(dir, 'chromium-in-netns');
      writeFileSync(executablePath, `#!/bin/sh\nexec ip netns exec ${o.netns} ${CHROMIUM} "$@"\n`);
      chmodSync(executablePath, 0o755);
    }
    const context = await chromium.launchPersistentContext(join(dir, 'profile'), {
      executablePath,
      headless: true,
      args: FLAGS,
      viewport: { width: 1360, height: 900 },
    });
    const page = context.pages()[0] ?? (await context.newPage());
    return {
      page,
      close: async () => {
        await context.close().catch(() => undefined);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Opens the dashboard at `baseUrl` and logs in with `token`; resolves once the app shows. */
export async function logIn(page: Page, baseUrl: string, token: string): Promise<void> {
  await page.goto(`${baseUrl}/`);
  await page.locator('#login').waitFor({ state: 'visible' });
  await page.fill('#token', token);
  await page.click('#login button[type=submit]');
  await page.locator('#app').waitFor({ state: 'visible' });
}

/**
 * Logs in to the dashboard of a node inside network namespace `netns` and runs `check` on the
 * page; fails when the page logged an error. Without Chromium: fails under
 * `VPNLB_REQUIRE_INTEGRATION=1`, else prints why and skips (a lab test's other assertions
 * still run).
 */
export async function checkDashboardInNamespace(
  netns: string,
  baseUrl: string,
  tokenFile: string,
  check: (page: Page) => Promise<void>,
): Promise<void> {
  const chromium = chromiumAvailable();
  if (!chromium.ok) {
    if (isIntegrationRequired()) throw new Error(`dashboard check: ${chromium.reason}`);
    console.log(`# skipping the dashboard check: ${chromium.reason}`);
    return;
  }
  const browser = await launchChromium({ netns });
  const errors: string[] = [];
  browser.page.on('pageerror', (e) => errors.push(e.message));
  browser.page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  try {
    await logIn(browser.page, baseUrl, readFileSync(tokenFile, 'utf8').trim());
    await check(browser.page);
    if (errors.length) throw new Error(`the dashboard logged errors: ${errors.join('; ')}`);
  } finally {
    await browser.close();
  }
}
