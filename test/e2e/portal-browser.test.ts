/**
 * The portal in a real browser (Debian chromium driven by playwright-core, headless): Alice
 * (201, office manager) signs in, sets Bob's (202) access code without knowing anything of his,
 * and a sipp call then logs in to 202 with the new code. Also: the reset confirmation that asks
 * for the number of messages, a refused code's reason, and a basic user's view. The screenshots
 * in README.md are taken here: every run takes them (into a temporary folder), and
 * `UPDATE_SCREENSHOTS=1` writes them to docs/screenshots/ — so a test run leaves the work tree
 * as it found it.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';
import { DEMO_PORTAL_PASSWORDS } from '../../src/store/demo.js';
import { listAuditEvents } from '../../src/store/audit.js';
import { runSipp, sippAvailable, sippReport } from '../support/sipp.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.log(`portal browser tests skipped: ${CHROMIUM} is not installed (Debian package chromium)`);
const haveSipp = sippAvailable();
const UPDATE_SHOTS = process.env.UPDATE_SCREENSHOTS === '1';
let SHOTS = join(packageRoot, 'docs', 'screenshots');

describe.skipIf(!haveChromium)('portal in a real browser', () => {
  let t: TestServer;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    t = await startTestServer(process.env.DATABASE_URL !== undefined ? 'postgres' : 'pglite');
    base = `http://127.0.0.1:${t.server.http.port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    if (UPDATE_SHOTS) await mkdir(SHOTS, { recursive: true });
    else SHOTS = await mkdtemp(join(tmpdir(), 'vmaccess-shots-'));
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await t?.stop();
    if (!UPDATE_SHOTS) await rm(SHOTS, { recursive: true, force: true });
  });

  async function signIn(page: Page, user: string, password: string): Promise<void> {
    await page.goto(`${base}/portal/login`);
    await page.getByLabel('Domain').fill('demo.local');
    await page.getByLabel('Extension').fill(user);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${base}/portal`);
  }

  it('201 signs in, sets 202\'s code in the manager view; a sipp call logs in to 202 with it', async () => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
    const page = await context.newPage();
    try {
      await page.goto(`${base}/portal/login`);
      await page.screenshot({ path: join(SHOTS, 'sign-in.png') });
      await signIn(page, '201', DEMO_PORTAL_PASSWORDS['201']);
      await expect(page.getByRole('heading', { name: 'Mailbox 201' }).isVisible()).resolves.toBe(true);
      await page.screenshot({ path: join(SHOTS, 'my-voicemail.png') });

      await page.getByRole('link', { name: 'Manager view' }).click();
      await page.waitForURL(`${base}/portal/domains/demo.local/manage`);
      const row = page.getByRole('row', { name: /^202 / });
      await row.getByText('Set access code').click();
      await page.getByLabel('New access code for 202').fill('1234');
      await page.getByRole('button', { name: 'Set code for 202' }).click();
      await expect(page.getByRole('alert').textContent()).resolves.toContain('run of consecutive digits');
      await page.getByRole('row', { name: /^202 / }).getByText('Set access code').click();
      await page.getByLabel('New access code for 202').fill('5150');
      await page.getByRole('button', { name: 'Set code for 202' }).click();
      await expect(page.getByRole('status').textContent()).resolves.toContain('The access code of mailbox 202 has been set.');
      await page.screenshot({ path: join(SHOTS, 'manager-view.png'), fullPage: true });
    } finally {
      await context.close();
    }
    const set = (await listAuditEvents(t.server.core.db, { domain: 'demo.local', mailbox: '202' })).at(-1);
    expect(set).toMatchObject({ event: 'pin_changed', channel: 'portal', actor: '201@demo.local' });

    if (haveSipp) {
      const run = await runSipp('login-5150-goodbye.xml', { target: t.sipTarget, service: '*97', caller: '202', domain: 'demo.local', messageTrace: true });
      expect(run.exitCode, sippReport(run)).toBe(0);
      const login = (await listAuditEvents(t.server.core.db, { domain: 'demo.local', mailbox: '202' })).filter((e) => e.callId === run.callId);
      expect(login.map((e) => e.event)).toEqual(['login_succeeded']);
    } else {
      expect((await t.server.core.accessCodes.verifyLogin('demo.local', '202', '5150', { channel: 'phone', actor: 'test', callId: null })).result).toBe('ok');
    }
  }, 90_000);

  it('reset asks for the number of messages that will be deleted before it does anything', async () => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 600 } });
    const page = await context.newPage();
    try {
      await signIn(page, '201', DEMO_PORTAL_PASSWORDS['201']);
      // The short address leads a user to their own domain's Manager view.
      await page.goto(`${base}/portal/manage`);
      await page.waitForURL(`${base}/portal/domains/demo.local/manage`);
      await page.getByRole('button', { name: 'Reset 204' }).click();
      await expect(page.getByRole('alert').textContent()).resolves.toContain('0 messages will be deleted for good');
      await page.screenshot({ path: join(SHOTS, 'reset-confirm.png') });
      await page.getByLabel(/Type the number of messages/).fill('3');
      await page.getByRole('button', { name: 'Reset 204' }).click();
      await expect(page.getByRole('alert').textContent()).resolves.toContain('0 messages would be deleted');
      expect(await t.server.core.accessCodes.hasAccessCode('demo.local', '204')).toBe(true);
      await page.getByRole('button', { name: 'Reset 204' }).click();
      await page.getByLabel(/Type the number of messages/).fill('0');
      await page.getByRole('button', { name: 'Reset 204' }).click();
      await expect(page.getByRole('status').textContent()).resolves.toContain('Mailbox 204 has been reset');
      expect(await t.server.core.accessCodes.hasAccessCode('demo.local', '204')).toBe(false);
    } finally {
      await context.close();
    }
  }, 60_000);

  it('a basic user (202) sees only their own mailbox and changes their own code', async () => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 600 } });
    const page = await context.newPage();
    try {
      await signIn(page, '202', DEMO_PORTAL_PASSWORDS['202']);
      expect(await page.getByRole('link', { name: 'Manager view' }).count()).toBe(0);
      await page.getByLabel('New access code (4 to 10 digits)').fill('6402');
      await page.getByLabel('New access code again').fill('6402');
      await page.getByRole('button', { name: 'Change access code' }).click();
      await expect(page.getByRole('status').textContent()).resolves.toContain('Your access code has been changed.');
      await page.goto(`${base}/portal/manage`);
      await expect(page.locator('tbody tr').count()).resolves.toBe(0);
    } finally {
      await context.close();
    }
    expect((await listAuditEvents(t.server.core.db, { domain: 'demo.local', mailbox: '202' })).at(-1)).toMatchObject({ event: 'pin_changed', actor: '202@demo.local' });
  }, 60_000);
});
