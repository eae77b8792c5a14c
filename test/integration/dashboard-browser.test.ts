/**
 * The dashboard in a real browser: Debian's Chromium, headless, driven by playwright-core (no
 * browser download), against a running vpnlb with simulated RRAS servers and clients on
 * loopback. Log in with the token, see both services, watch a backend go down when its server
 * stops, drain another from the UI (through the confirmation), see the events, ask "which
 * server", and check that the page logged no console error (a CSP violation would be one).
 *
 * `VPNLB_SCREENSHOTS=DIR` also saves the main views as PNG files into DIR (docs/ uses them).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { chromiumAvailable, launchChromium, type Browser } from '../../lab/browser.js';
import { requireOrSkip } from '../../lab/requirements.js';
import { startDashboardFarm, type DashboardFarm } from '../../lab/scenarios/dashboard-farm.js';

const skip = requireOrSkip('dashboard browser tests', chromiumAvailable());
const SHOTS = process.env.VPNLB_SCREENSHOTS;

describe('dashboard in headless Chromium', { skip, timeout: 120_000 }, () => {
  let farm: DashboardFarm;
  let browser: Browser;
  let page: Page;
  const consoleErrors: string[] = [];

  const row = (service: string, backend: string) =>
    page.locator(`section[data-service="${service}"] tr[data-backend="${backend}"]`);
  const stateOf = (service: string, backend: string) => row(service, backend).locator('.state');

  before(async () => {
    farm = await startDashboardFarm();
    browser = await launchChromium();
    page = browser.page;
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    // Name the request behind a "Failed to load resource" console error.
    page.on('response', (r) => {
      if (r.status() >= 400)
        consoleErrors.push(`${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`);
    });
  });
  after(async () => {
    await browser?.close();
    await farm?.close();
  });

  it('asks for a token, refuses a wrong one, logs in with the right one', async () => {
    await page.goto(`${farm.baseUrl}/`);
    await page.locator('#login').waitFor({ state: 'visible' });
    await page.fill('#token', 'not-the-token-0123456789');
    await page.click('#login button[type=submit]');
    await page.locator('#login-error', { hasText: 'refused' }).waitFor();
    // The refused login is the one expected error (Chromium logs every 4xx answer).
    assert.deepEqual(
      consoleErrors
        .map((e) => e.replace(/^Failed to load resource: .*status of (\d+).*$/, '$1'))
        .sort(),
      ['401', '401 POST /api/v1/login'],
    );
    consoleErrors.length = 0;
    await page.fill('#token', farm.token);
    await page.click('#login button[type=submit]');
    await page.locator('#app').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#role').textContent(), 'operator');
  });

  it('shows both services with their backends up', async () => {
    await page.locator('section[data-service="sstp"]').waitFor();
    await page.locator('section[data-service="ikev2"]').waitFor();
    for (const b of ['rras1', 'rras2', 'rras3'])
      await stateOf('sstp', b).filter({ hasText: 'up' }).waitFor({ timeout: 15_000 });
    assert.match(
      (await page.locator('section[data-service="sstp"] .facts').textContent()) ?? '',
      /127\.0\.41\.1/,
    );
    // Traffic reaches the charts (the history is sampled every 5 s).
    await page.locator('section[data-service="sstp"] .uplot').first().waitFor({ timeout: 15_000 });
    // An enabled server offers drain and disable, never enable.
    assert.deepEqual(await row('sstp', 'rras1').locator('.actions button').allTextContents(), [
      'drain',
      'disable',
    ]);
    if (SHOTS) {
      await page.waitForTimeout(6_000); // a second history sample, so the charts show lines
      await page.screenshot({ path: join(SHOTS, 'dashboard.png'), fullPage: true });
    }
  });

  it('a server that stops is shown down, with the reason', async () => {
    await farm.stopSstpServer('rras3');
    await stateOf('sstp', 'rras3').filter({ hasText: 'down' }).waitFor({ timeout: 15_000 });
    assert.match((await row('sstp', 'rras3').textContent()) ?? '', /failed/);
    await page.locator('#events li', { hasText: 'up → down' }).first().waitFor();
  });

  it('drains a server from the UI after a confirmation that says what happens to its tunnels', async () => {
    await row('sstp', 'rras2').locator('button[data-action="drain"]').click();
    const dialog = page.locator('#confirm');
    await dialog.waitFor({ state: 'visible' });
    assert.match(
      (await page.locator('#confirm-text').textContent()) ?? '',
      /existing tunnel\(s\)? stay|existing tunnels stay/,
    );
    if (SHOTS) await page.screenshot({ path: join(SHOTS, 'dashboard-confirm.png') });
    await page.click('#confirm-ok');
    await stateOf('sstp', 'rras2').filter({ hasText: 'draining' }).waitFor();
    assert.equal(
      farm.runtime.controller
        .snapshot()
        .services.find((s) => s.name === 'sstp')!
        .backends.find((b) => b.name === 'rras2')!.state,
      'draining',
    );
    // Actions follow the state: a draining server offers enable and disable.
    await row('sstp', 'rras2').locator('.actions button', { hasText: 'enable' }).waitFor();
    await page
      .locator('#events li', { hasText: 'drain rras/rras2 by the administrator (dashboard)' })
      .waitFor();
  });

  it('answers "which server gets this client?"', async () => {
    await page.fill('#which-client', '203.0.113.7');
    await page.fill('#which-spi', '0a0b0c0d0e0f1011');
    await page.click('#which button[type=submit]');
    await page.locator('#which-answer li', { hasText: 'ikev2' }).waitFor();
    assert.match((await page.locator('#which-answer').textContent()) ?? '', /Maglev slot \d+/);
  });

  it('fits a phone-sized screen', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.waitForTimeout(300);
    const overflow = await page.evaluate(
      () => document.documentElement.scrollWidth - window.innerWidth,
    );
    assert.ok(overflow <= 1, `the page is ${overflow} px wider than a phone screen`);
    if (SHOTS) await page.screenshot({ path: join(SHOTS, 'dashboard-phone.png'), fullPage: false });
    await page.setViewportSize({ width: 1360, height: 900 });
  });

  it('logged no console error (CSP violations included)', () => {
    assert.deepEqual(consoleErrors, []);
  });
});
