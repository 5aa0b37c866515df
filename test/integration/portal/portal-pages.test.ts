/**
 * The portal's pages and forms over HTTP (what the browser test does with a browser, here for
 * every case): the domain of every manager form is the domain of its page, so an operator acting
 * on other.local acts on other.local; "My voicemail" asks for exactly what the change will need;
 * shared mailboxes' messages for their members; sign-in refused from another site.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LocalAdmin } from '../../../src/admin/admin.js';
import { upsertOperator } from '../../../src/store/accounts.js';
import { listAuditEvents } from '../../../src/store/audit.js';
import { DEMO_PORTAL_PASSWORDS } from '../../../src/store/demo.js';
import { encodePcmWav } from '../../../src/messages/wav.js';
import { describeEachDatabase } from '../store/helpers.js';
import { startTestServer, type TestServer } from '../../support/test-server.js';

interface Browser { cookie: string; csrf: string }
interface Page { status: number; text: string; location: string | null; setCookie: string | null }

describeEachDatabase('portal pages', (variant) => {
  let t: TestServer;
  let base: string;

  /** A request as a browser's form would send it (no redirects followed). */
  const request = async (method: 'GET' | 'POST', path: string, opts: { as?: Browser; form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<Page> => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.as !== undefined) headers.cookie = opts.as.cookie;
    let body: string | undefined;
    if (method === 'POST') {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams({ ...(opts.as !== undefined ? { csrf: opts.as.csrf } : {}), ...opts.form }).toString();
    }
    const res = await fetch(`${base}${path}`, { method, headers, body, redirect: 'manual' });
    return { status: res.status, text: await res.text(), location: res.headers.get('location'), setCookie: res.headers.get('set-cookie') };
  };
  /** Signs in through the API (users or operators); the cookie works for the pages too. */
  const signIn = async (body: Record<string, string>): Promise<Browser> => {
    const res = await fetch(`${base}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(res.status).toBe(200);
    return { cookie: (res.headers.get('set-cookie') ?? '').split(';')[0]!, csrf: String(((await res.json()) as { csrfToken: string }).csrfToken) };
  };
  const user = (extension: string, password: string): Promise<Browser> => signIn({ domain: 'demo.local', user: extension, password });
  const loginWorks = async (domain: string, mailbox: string, code: string): Promise<boolean> =>
    (await t.server.core.accessCodes.verifyLogin(domain, mailbox, code, { channel: 'phone', actor: 'test', callId: null })).result === 'ok';
  const stale = (): Promise<unknown> => t.server.core.db.query(`UPDATE portal_sessions SET authenticated_at = now() - interval '10 minutes'`);

  beforeAll(async () => {
    t = await startTestServer(variant);
    base = `http://127.0.0.1:${t.server.http.port}`;
    await upsertOperator(t.server.core.db, 'root', await t.server.core.passwords.hash('root-password-123'));
    const admin = new LocalAdmin(t.server.core);
    await admin.setUserPassword({ domain: 'demo.local', extension: '203', password: 'carol-portal-pw1', actor: 'cli:test' });
    await admin.setUserPassword({ domain: 'demo.local', extension: '204', password: 'dan-portal-5150', actor: 'cli:test' });
  });
  afterAll(async () => { await t?.stop(); });

  it('an operator picks a domain, and every form of other.local acts on other.local — never on demo.local', async () => {
    const op = await signIn({ operator: 'root', password: 'root-password-123' });
    const domains = await request('GET', '/portal/manage', { as: op });
    expect(domains.status).toBe(200);
    expect(domains.text).toContain('href="/portal/domains/demo.local/manage"');
    expect(domains.text).toContain('href="/portal/domains/other.local/manage"');

    const page = await request('GET', '/portal/domains/other.local/manage', { as: op });
    expect(page.status).toBe(200);
    expect(page.text).toContain('Manager view — other.local');
    expect(page.text).toContain('action="/portal/domains/other.local/mailboxes/201/access-code"');
    expect(page.text).not.toContain('/portal/domains/demo.local/');

    const set = await request('POST', '/portal/domains/other.local/mailboxes/201/access-code', { as: op, form: { newCode: '8642' } });
    expect(set.status, set.text).toBe(200);
    expect(set.text).toContain('The access code of mailbox 201 has been set.');
    expect(await loginWorks('other.local', '201', '8642')).toBe(true);
    expect(await loginWorks('demo.local', '201', '4826')).toBe(true);
    for (const path of ['require-change', 'unlock']) {
      expect((await request('POST', `/portal/domains/other.local/mailboxes/201/${path}`, { as: op })).status, path).toBe(200);
    }
    const other = (await listAuditEvents(t.server.core.db, { domain: 'other.local', mailbox: '201' })).filter((e) => e.channel === 'portal').map((e) => [e.event, e.channel, e.actor]);
    expect(other).toEqual([['pin_changed', 'portal', 'operator:root'], ['pin_change_required', 'portal', 'operator:root'], ['mailbox_unlocked', 'portal', 'operator:root']]);
    const demo = (await listAuditEvents(t.server.core.db, { domain: 'demo.local', mailbox: '201' })).filter((e) => e.channel === 'portal');
    expect(demo).toEqual([]);

    // Reset: the confirmation form keeps the domain too.
    const confirm = await request('POST', '/portal/domains/other.local/mailboxes/201/reset', { as: op });
    expect(confirm.text).toContain('action="/portal/domains/other.local/mailboxes/201/reset"');
    expect(confirm.text).toContain('href="/portal/domains/other.local/manage"');
    const done = await request('POST', '/portal/domains/other.local/mailboxes/201/reset', { as: op, form: { confirmMessages: '0' } });
    expect(done.text).toContain('Mailbox 201 has been reset');
    expect(await t.server.core.accessCodes.hasAccessCode('other.local', '201')).toBe(false);
    expect(await t.server.core.accessCodes.hasAccessCode('demo.local', '201')).toBe(true);
  });

  it('a user\'s Manager view is their own domain; another domain\'s URL is refused and changes nothing', async () => {
    const alice = await user('201', DEMO_PORTAL_PASSWORDS['201']);
    const manage = await request('GET', '/portal/manage', { as: alice });
    expect([manage.status, manage.location]).toEqual([303, '/portal/domains/demo.local/manage']);
    expect((await request('GET', '/portal/domains/other.local/manage', { as: alice })).status).toBe(403);
    const attempt = await request('POST', '/portal/domains/other.local/mailboxes/201/access-code', { as: alice, form: { newCode: '2468' } });
    expect(attempt.status).toBe(403);
    expect(attempt.text).toContain('You may not do that.');
    expect(await loginWorks('other.local', '201', '2468')).toBe(false);
    expect((await request('POST', '/portal/domains/demo.local/mailboxes/202/unlock', { as: alice, form: { csrf: 'forged' } })).status).toBe(403);
  });

  it('the Manager view offers only what the manager may do', async () => {
    const alice = await request('GET', '/portal/domains/demo.local/manage', { as: await user('201', DEMO_PORTAL_PASSWORDS['201']) });
    expect(alice.text).toContain('aria-label="Recycle 202"');
    const dan = await request('GET', '/portal/domains/demo.local/manage', { as: await user('204', 'dan-portal-5150') });
    expect(dan.status).toBe(200);
    expect(dan.text).toContain('Set code for 202');
    expect(dan.text).not.toContain('Reset 202');
    expect(dan.text).not.toContain('Recycle 202');
    expect(dan.text).not.toMatch(/Set code for 20[14]/);
  });

  it('"My voicemail" asks for what the change needs: nothing when fresh, the current code later, a new sign-in when there is no code', async () => {
    // No code yet, sign-in 10 minutes old: no form to fill in vain, but "sign in again".
    const carol = await user('203', 'carol-portal-pw1');
    await stale();
    const page = await request('GET', '/portal', { as: carol });
    expect(page.text).toContain('sign out and sign in again');
    expect(page.text).not.toContain('id="newCode"');
    const refused = await request('POST', '/portal/my/access-code', { as: carol, form: { newCode: '5821', newCode2: '5821' } });
    expect(refused.status).toBe(403);
    expect(refused.text).toContain('Sign in again to choose your first access code.');
    expect(await t.server.core.accessCodes.hasAccessCode('demo.local', '203')).toBe(false);
    // Fresh: no current code asked, and none needed.
    const fresh = await user('203', 'carol-portal-pw1');
    const form = await request('GET', '/portal', { as: fresh });
    expect(form.text).toContain('id="newCode"');
    expect(form.text).not.toContain('id="currentCode"');
    expect((await request('POST', '/portal/my/access-code', { as: fresh, form: { newCode: '5821', newCode2: '5821' } })).text).toContain('Your access code has been changed.');
    // A code now, and stale: the current code is asked for, and needed.
    await stale();
    expect((await request('GET', '/portal', { as: fresh })).text).toContain('id="currentCode"');
    expect((await request('POST', '/portal/my/access-code', { as: fresh, form: { newCode: '6390', newCode2: '6390' } })).status).toBe(403);
    const changed = await request('POST', '/portal/my/access-code', { as: fresh, form: { currentCode: '5821', newCode: '6390', newCode2: '6390' } });
    expect(changed.text).toContain('Your access code has been changed.');
    expect(await loginWorks('demo.local', '203', '6390')).toBe(true);
  });

  it('members see a shared mailbox\'s messages on "My voicemail": listen, save, delete; others cannot', async () => {
    const wav = encodePcmWav(new Int16Array(12_000).fill(700));
    const left = await t.server.core.messages.deposit({ domain: 'demo.local', mailbox: '290', caller: '5550199', callerName: null, wav, durationMs: 1500 });
    const bob = await user('202', DEMO_PORTAL_PASSWORDS['202']);
    const page = await request('GET', '/portal', { as: bob });
    expect(page.text).toContain('Shared mailbox 290 (Support)');
    const audioUrl = `/portal/domains/demo.local/mailboxes/290/messages/${left.id}/audio`;
    expect(page.text).toContain(`src="${audioUrl}"`);
    // Seeing a shared mailbox is not managing anything: no Manager view for Bob.
    expect(page.text).not.toContain('Manager view');
    const audio = await fetch(`${base}${audioUrl}`, { headers: { cookie: bob.cookie } });
    expect([audio.status, audio.headers.get('content-type')]).toEqual([200, 'audio/wav']);
    expect((await fetch(`${base}${audioUrl}`)).status).toBe(401);
    const dan = await user('204', 'dan-portal-5150');
    expect((await fetch(`${base}${audioUrl}`, { headers: { cookie: dan.cookie } })).status).toBe(403);
    expect((await request('POST', `/portal/domains/demo.local/mailboxes/290/messages/${left.id}/delete`, { as: dan })).status).toBe(403);

    expect((await request('POST', `/portal/domains/demo.local/mailboxes/290/messages/${left.id}/save`, { as: bob })).text).toContain('Message saved.');
    const deleted = await request('POST', `/portal/domains/demo.local/mailboxes/290/messages/${left.id}/delete`, { as: bob });
    expect(deleted.text).toContain('Message deleted.');
    expect(await t.server.core.messages.counts('demo.local', '290')).toEqual({ new: 0, saved: 0 });
    expect((await request('POST', `/portal/domains/demo.local/mailboxes/290/messages/${left.id}/delete`, { as: bob })).status).toBe(404);
  });

  it('the sign-in form is refused from another site and bounded in length; from this site it signs in', async () => {
    const form = { domain: 'demo.local', user: '201', password: DEMO_PORTAL_PASSWORDS['201'] };
    const foreign = await request('POST', '/portal/login', { form, headers: { origin: 'http://evil.example' } });
    expect(foreign.status).toBe(403);
    expect(foreign.setCookie).toBeNull();
    expect(foreign.text).toContain('sent from another site');
    expect((await request('POST', '/portal/login', { form, headers: { referer: 'http://evil.example/' } })).status).toBe(403);
    const tooLong = await request('POST', '/portal/login', { form: { ...form, password: 'x'.repeat(201) } });
    expect(tooLong.status).toBe(400);
    expect(tooLong.setCookie).toBeNull();
    const ok = await request('POST', '/portal/login', { form, headers: { origin: base } });
    expect([ok.status, ok.location]).toEqual([303, '/portal']);
    expect(ok.setCookie).toMatch(/^vmaccess_session=/);
  });
});
