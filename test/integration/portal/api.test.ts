/**
 * The HTTP API of the portal and admin channel, against a whole server (demo tenant) on PGlite
 * and on real Postgres: every route, and every refusal — wrong role, other domain, bad code,
 * missing confirmation, locked sign-in, missing CSRF token — with the audit rows each act leaves.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEMO_PORTAL_PASSWORDS } from '../../../src/store/demo.js';
import { createApiToken, setPortalPassword, upsertOperator } from '../../../src/store/accounts.js';
import { listAuditEvents } from '../../../src/store/audit.js';
import { describeEachDatabase } from '../store/helpers.js';
import { encodePcmWav } from '../../../src/messages/wav.js';
import { startTestServer, type TestServer } from '../../support/test-server.js';

interface Session {
  cookie: string;
  csrf: string;
}

describeEachDatabase('portal HTTP API', (variant) => {
  let t: TestServer;
  let base: string;
  let operatorToken: string;

  const api = async (method: string, path: string, opts: { session?: Session; token?: string; body?: unknown; csrf?: string | null } = {}): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> => {
    const headers: Record<string, string> = {};
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    if (opts.session !== undefined) {
      headers.cookie = opts.session.cookie;
      if (opts.csrf !== null) headers['x-csrf-token'] = opts.csrf ?? opts.session.csrf;
    }
    if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
    const res = await fetch(`${base}${path}`, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
    const text = await res.text();
    return { status: res.status, body: text === '' ? {} : JSON.parse(text) as Record<string, unknown>, headers: res.headers };
  };
  const signIn = async (user: string, password: string, domain = 'demo.local'): Promise<Session> => {
    const r = await api('POST', '/api/session', { body: { domain, user, password } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const setCookie = r.headers.get('set-cookie') ?? '';
    return { cookie: setCookie.split(';')[0]!, csrf: String(r.body.csrfToken) };
  };
  const events = async (mailbox: string, domain = 'demo.local'): Promise<Array<[string, string, string]>> =>
    (await listAuditEvents(t.server.core.db, { domain, mailbox })).map((e) => [e.event, e.channel, e.actor]);
  const loginWorks = async (mailbox: string, code: string): Promise<boolean> =>
    (await t.server.core.accessCodes.verifyLogin('demo.local', mailbox, code, { channel: 'phone', actor: 'test', callId: null })).result === 'ok';

  beforeAll(async () => {
    t = await startTestServer(variant);
    base = `http://127.0.0.1:${t.server.http.port}`;
    const root = await upsertOperator(t.server.core.db, 'root', await t.server.core.passwords.hash('root-password-123'));
    operatorToken = randomBytes(32).toString('base64url');
    await createApiToken(t.server.core.db, root.id, 'api test', operatorToken);
  });
  afterAll(async () => { await t?.stop(); });

  it('sign-in: a session cookie (HttpOnly, SameSite=Strict) and a CSRF token; failures never say whether the user exists', async () => {
    const r = await api('POST', '/api/session', { body: { domain: 'demo.local', user: '201', password: DEMO_PORTAL_PASSWORDS['201'] } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ actor: '201@demo.local' });
    expect(r.headers.get('set-cookie')).toMatch(/^vmaccess_session=[^;]+;.*HttpOnly/i);
    expect(r.headers.get('set-cookie')).toMatch(/SameSite=Strict/i);
    const wrong = await api('POST', '/api/session', { body: { domain: 'demo.local', user: '201', password: 'not-the-password' } });
    const unknown = await api('POST', '/api/session', { body: { domain: 'demo.local', user: '999', password: 'not-the-password' } });
    const noAccount = await api('POST', '/api/session', { body: { domain: 'demo.local', user: '203', password: 'not-the-password' } });
    for (const x of [wrong, unknown, noAccount]) {
      expect(x.status).toBe(401);
      expect(x.body).toEqual({ error: 'sign_in_failed', message: 'sign-in failed' });
    }
    expect((await api('POST', '/api/session', { body: { password: 'x' } })).status).toBe(400);
    expect((await api('POST', '/api/session', { body: { domain: 'demo.local', user: '201', password: 'x', extra: 1 } })).status).toBe(400);
  });

  it('an office manager sets another user\'s code without knowing anything of theirs; the phone takes it at once', async () => {
    const alice = await signIn('201', DEMO_PORTAL_PASSWORDS['201']);
    const r = await api('PUT', '/api/domains/demo.local/mailboxes/202/access-code', { session: alice, body: { newCode: '8264' } });
    expect(r.status, JSON.stringify(r.body)).toBe(204);
    expect(await loginWorks('202', '8264')).toBe(true);
    expect(await loginWorks('202', '7391')).toBe(false);
    expect((await events('202')).filter(([e]) => e === 'pin_changed')).toEqual([['pin_changed', 'portal', '201@demo.local']]);
    // A shared mailbox too, and a code refused by the phone's rules comes back with the rule.
    expect((await api('PUT', '/api/domains/demo.local/mailboxes/290/access-code', { session: alice, body: { newCode: '3141' } })).status).toBe(204);
    const refused = await api('PUT', '/api/domains/demo.local/mailboxes/202/access-code', { session: alice, body: { newCode: '1234' } });
    expect(refused).toMatchObject({ status: 400, body: { error: 'policy', reason: 'sequential' } });
    expect((await api('PUT', '/api/domains/demo.local/mailboxes/202/access-code', { session: alice, body: { newCode: '8264' } })).body).toMatchObject({ reason: 'sameAsCurrent' });
  });

  it('a basic user cannot touch another mailbox; nobody crosses domains but the operator', async () => {
    const bob = await signIn('202', DEMO_PORTAL_PASSWORDS['202']);
    const alice = await signIn('201', DEMO_PORTAL_PASSWORDS['201']);
    for (const target of ['201', '203', '290']) {
      const r = await api('PUT', `/api/domains/demo.local/mailboxes/${target}/access-code`, { session: bob, body: { newCode: '5821' } });
      expect(r, target).toMatchObject({ status: 403, body: { error: 'not_in_scope' } });
    }
    expect((await api('POST', '/api/domains/demo.local/mailboxes/203/unlock', { session: bob })).status).toBe(403);
    expect(await api('PUT', '/api/domains/other.local/mailboxes/201/access-code', { session: alice, body: { newCode: '5821' } })).toMatchObject({ status: 403, body: { error: 'other_domain' } });
    expect((await api('GET', '/api/domains/other.local/mailboxes', { session: alice })).status).toBe(403);
    const byOperator = await api('PUT', '/api/domains/other.local/mailboxes/201/access-code', { token: operatorToken, body: { newCode: '5821' } });
    expect(byOperator.status).toBe(204);
    expect((await events('201', 'other.local')).at(-1)).toEqual(['pin_changed', 'admin', 'token:root']);
    // Mailboxes: each sees what their role allows.
    const bobs = (await api('GET', '/api/domains/demo.local/mailboxes', { session: bob })).body.mailboxes as Array<{ number: string }>;
    expect(bobs.map((m) => m.number)).toEqual(['202']);
    const alices = (await api('GET', '/api/domains/demo.local/mailboxes', { session: alice })).body.mailboxes as Array<{ number: string; shared: boolean; members: string[] }>;
    expect(alices.map((m) => m.number)).toEqual(['201', '202', '203', '204', '290']);
    expect(alices.find((m) => m.number === '290')).toMatchObject({ shared: true, members: ['201', '202'] });
  });

  it('an advanced user manages the basic users of their site, not the office manager, and may not recycle', async () => {
    const dan = await t.server.core.db.query<{ id: number }>(`SELECT u.id FROM users u JOIN domains d ON d.id = u.domain_id WHERE d.name = 'demo.local' AND u.extension = '204'`);
    await setPortalPassword(t.server.core.db, dan[0]!.id, await t.server.core.passwords.hash('dan-portal-5150'));
    const session = await signIn('204', 'dan-portal-5150');
    const visible = (await api('GET', '/api/domains/demo.local/mailboxes', { session })).body.mailboxes as Array<{ number: string }>;
    expect(visible.map((m) => m.number)).toEqual(['202', '203', '204']);
    expect((await api('POST', '/api/domains/demo.local/mailboxes/203/unlock', { session })).status).toBe(200);
    expect((await api('PUT', '/api/domains/demo.local/mailboxes/201/access-code', { session, body: { newCode: '5821' } })).status).toBe(403);
    expect(await api('POST', '/api/domains/demo.local/mailboxes/202/recycle/preview', { session })).toMatchObject({ status: 403, body: { error: 'role' } });
  });

  it('one\'s own code: no current code needed right after sign-in; later the current code, checked like a login', async () => {
    const bob = await signIn('202', DEMO_PORTAL_PASSWORDS['202']);
    expect((await api('PUT', '/api/domains/demo.local/mailboxes/202/access-code', { session: bob, body: { newCode: '4173' } })).status).toBe(204);
    expect((await events('202')).at(-1)).toEqual(['pin_changed', 'portal', '202@demo.local']);
    // Ten minutes later the sign-in is no longer fresh.
    await t.server.core.db.query(`UPDATE portal_sessions SET authenticated_at = now() - interval '10 minutes'`);
    expect(await api('PUT', '/api/domains/demo.local/mailboxes/202/access-code', { session: bob, body: { newCode: '6390' } })).toMatchObject({ status: 403, body: { error: 'needs_current_code' } });
    expect(await api('PUT', '/api/domains/demo.local/mailboxes/202/access-code', { session: bob, body: { newCode: '6390', currentCode: '0000' } })).toMatchObject({ status: 400, body: { error: 'current_code_incorrect' } });
    expect((await api('PUT', '/api/domains/demo.local/mailboxes/202/access-code', { session: bob, body: { newCode: '6390', currentCode: '4173' } })).status).toBe(204);
    expect(await loginWorks('202', '6390')).toBe(true);
  });

  it('state-changing requests need the CSRF token with the cookie; an API token needs none', async () => {
    const alice = await signIn('201', DEMO_PORTAL_PASSWORDS['201']);
    expect(await api('POST', '/api/domains/demo.local/mailboxes/202/unlock', { session: alice, csrf: null })).toMatchObject({ status: 403, body: { error: 'csrf' } });
    expect(await api('POST', '/api/domains/demo.local/mailboxes/202/unlock', { session: alice, csrf: 'forged' })).toMatchObject({ status: 403, body: { error: 'csrf' } });
    expect((await api('GET', '/api/domains/demo.local/mailboxes', { session: alice, csrf: null })).status).toBe(200);
    expect((await api('POST', '/api/domains/demo.local/mailboxes/202/unlock', { token: operatorToken })).status).toBe(200);
    expect(await api('GET', '/api/me', { token: 'not-a-token' })).toMatchObject({ status: 401, body: { error: 'unauthenticated' } });
    expect((await api('GET', '/api/me')).status).toBe(401);
  });

  it('require change, unlock: done, audited with channel and actor', async () => {
    const alice = await signIn('201', DEMO_PORTAL_PASSWORDS['201']);
    expect((await api('POST', '/api/domains/demo.local/mailboxes/204/require-change', { session: alice })).status).toBe(200);
    const must = await t.server.core.db.query<{ must_change: boolean }>(
      `SELECT c.must_change FROM access_code_credentials c JOIN mailboxes m ON m.id = c.mailbox_id JOIN domains d ON d.id = m.domain_id WHERE d.name = 'demo.local' AND m.number = '204'`);
    expect(must[0]?.must_change).toBe(true);
    expect(await api('POST', '/api/domains/demo.local/mailboxes/203/require-change', { session: alice })).toMatchObject({ status: 409, body: { error: 'no_access_code' } });
    expect((await api('POST', '/api/domains/demo.local/mailboxes/204/unlock', { session: alice })).body).toEqual({ wasLocked: false });
    // Ten failed phone logins lock 204: the list says so, unlock clears it.
    for (let i = 0; i < 10; i++) await t.server.core.accessCodes.verifyLogin('demo.local', '204', '0000', { channel: 'phone', actor: 'test', callId: null });
    const list = async (): Promise<Array<{ number: string; locked: boolean | null }>> => (await api('GET', '/api/domains/demo.local/mailboxes', { session: alice })).body.mailboxes as Array<{ number: string; locked: boolean | null }>;
    expect((await list()).find((m) => m.number === '204')?.locked).toBe(true);
    expect((await list()).find((m) => m.number === '202')?.locked).toBe(false);
    expect((await api('POST', '/api/domains/demo.local/mailboxes/204/unlock', { session: alice })).body).toEqual({ wasLocked: true });
    expect((await list()).find((m) => m.number === '204')?.locked).toBe(false);
    expect((await events('204')).filter(([e]) => e !== 'login_failed' && e !== 'mailbox_locked').slice(-3)).toEqual([
      ['pin_change_required', 'portal', '201@demo.local'], ['mailbox_unlocked', 'portal', '201@demo.local'], ['mailbox_unlocked', 'portal', '201@demo.local']]);
    expect((await api('POST', '/api/domains/demo.local/mailboxes/999/unlock', { session: alice })).status).toBe(404);
    expect((await api('POST', '/api/domains/demo.local/mailboxes/2x2/unlock', { session: alice })).status).toBe(400);
  });

  it('messages: the owner lists, streams, saves and deletes; others only within their role; MWI hears of it', async () => {
    const messages = t.server.core.messages;
    const changed: string[] = [];
    messages.on('changed', (d: string, m: string) => changed.push(`${m}@${d}`));
    const wav = encodePcmWav(new Int16Array(12_000).fill(900));
    const left = await messages.deposit({ domain: 'demo.local', mailbox: '202', caller: '5551234', callerName: 'Pat', wav, durationMs: 1500 });
    expect(left.result).toBe('saved');
    const bob = await signIn('202', DEMO_PORTAL_PASSWORDS['202']);
    const list = await api('GET', '/api/domains/demo.local/mailboxes/202/messages', { session: bob });
    expect(list.status).toBe(200);
    expect(list.body).toEqual([{ id: left.id, caller: '5551234', callerName: 'Pat', receivedAt: expect.any(String), durationMs: 1500, state: 'new' }]);
    const audio = await fetch(`${base}/api/domains/demo.local/mailboxes/202/messages/${left.id}/audio`, { headers: { cookie: bob.cookie } });
    expect(audio.status).toBe(200);
    expect(audio.headers.get('content-type')).toBe('audio/wav');
    expect(Buffer.from(await audio.arrayBuffer())).toEqual(wav);
    // A basic user sees nobody else's messages; the office manager (201) and the operator do.
    expect((await api('GET', '/api/domains/demo.local/mailboxes/201/messages', { session: bob })).status).toBe(403);
    const alice = await signIn('201', DEMO_PORTAL_PASSWORDS['201']);
    expect((await api('GET', '/api/domains/demo.local/mailboxes/202/messages', { session: alice })).status).toBe(200);
    expect((await api('GET', '/api/domains/other.local/mailboxes/201/messages', { session: alice })).status).toBe(403);
    expect((await api('GET', '/api/domains/demo.local/mailboxes/202/messages', { token: operatorToken })).status).toBe(200);
    // The portal page lists it with a player and the buttons; the player's URL streams it.
    const page = await (await fetch(`${base}/portal`, { headers: { cookie: bob.cookie } })).text();
    expect(page).toContain(`/portal/my/messages/${left.id}/audio`);
    expect(page).toContain('5551234 (Pat)');
    const played = await fetch(`${base}/portal/my/messages/${left.id}/audio`, { headers: { cookie: bob.cookie } });
    expect([played.status, played.headers.get('content-type')]).toEqual([200, 'audio/wav']);
    expect((await fetch(`${base}/portal/my/messages/${left.id}/audio`)).status).toBe(401);
    // Save, then delete (CSRF needed with a cookie); a message of another mailbox is not found.
    expect((await api('POST', `/api/domains/demo.local/mailboxes/202/messages/${left.id}/save`, { session: bob, csrf: null })).status).toBe(403);
    expect((await api('POST', `/api/domains/demo.local/mailboxes/202/messages/${left.id}/save`, { session: bob })).status).toBe(204);
    expect(await messages.counts('demo.local', '202')).toEqual({ new: 0, saved: 1 });
    expect((await api('DELETE', `/api/domains/demo.local/mailboxes/201/messages/${left.id}`, { session: alice })).status).toBe(404);
    expect((await api('DELETE', `/api/domains/demo.local/mailboxes/202/messages/${left.id}`, { session: bob })).status).toBe(204);
    expect((await api('DELETE', `/api/domains/demo.local/mailboxes/202/messages/${left.id}`, { session: bob })).status).toBe(404);
    expect((await api('GET', `/api/domains/demo.local/mailboxes/202/messages/${left.id}/audio`, { session: bob })).status).toBe(404);
    expect((await api('GET', '/api/domains/demo.local/mailboxes/202/messages/x1/audio', { session: bob })).status).toBe(400);
    expect((await events('202')).at(-1)).toEqual(['message_deleted', 'portal', '202@demo.local']);
    expect(changed.filter((c) => c === '202@demo.local')).toHaveLength(3); // deposit, save, delete
  });

  it('reset shows the messages it will delete and needs that number back; then the mailbox is in first-time setup', async () => {
    const alice = await signIn('201', DEMO_PORTAL_PASSWORDS['201']);
    const db = t.server.core.db;
    const keys = [t.server.core.audio.newKey(), t.server.core.audio.newKey()];
    for (const key of keys) {
      await t.server.core.audio.put(key, Buffer.from('RIFF test'));
      await db.query(`INSERT INTO messages (mailbox_id, caller, duration_ms, audio_key)
                      SELECT m.id, '5551234', 3000, $1 FROM mailboxes m JOIN domains d ON d.id = m.domain_id WHERE d.name = 'demo.local' AND m.number = '204'`, [key]);
    }
    expect((await api('POST', '/api/domains/demo.local/mailboxes/204/reset/preview', { session: alice })).body).toEqual({ messages: 2 });
    expect(await api('POST', '/api/domains/demo.local/mailboxes/204/reset', { session: alice, body: { confirmMessages: 1 } })).toMatchObject({ status: 409, body: { error: 'confirmation_mismatch', messages: 2 } });
    expect((await api('POST', '/api/domains/demo.local/mailboxes/204/reset', { session: alice, body: {} })).status).toBe(400);
    const done = await api('POST', '/api/domains/demo.local/mailboxes/204/reset', { session: alice, body: { confirmMessages: 2 } });
    expect(done).toMatchObject({ status: 200, body: { messagesDeleted: 2 } });
    expect(await db.query(`SELECT 1 FROM messages WHERE audio_key = ANY($1)`, [keys])).toEqual([]);
    for (const key of keys) await expect(t.server.core.audio.get(key)).rejects.toThrow();
    expect(await t.server.core.accessCodes.hasAccessCode('demo.local', '204')).toBe(false);
    expect((await events('204')).at(-1)).toEqual(['mailbox_reset', 'portal', '201@demo.local']);
    expect(await t.server.core.messages.counts('demo.local', '204')).toEqual({ new: 0, saved: 0 });
  });

  it('recycle hands the extension to someone new: the old portal password stops working', async () => {
    const alice = await signIn('201', DEMO_PORTAL_PASSWORDS['201']);
    const bob = await signIn('202', DEMO_PORTAL_PASSWORDS['202']);
    expect((await api('POST', '/api/domains/demo.local/mailboxes/202/recycle/preview', { session: alice })).body).toEqual({ messages: 0 });
    expect((await api('POST', '/api/domains/demo.local/mailboxes/202/recycle', { session: alice, body: { confirmMessages: 0 } })).status).toBe(200);
    expect((await api('GET', '/api/me', { session: bob })).status).toBe(401);
    expect((await api('POST', '/api/session', { body: { domain: 'demo.local', user: '202', password: DEMO_PORTAL_PASSWORDS['202'] } })).status).toBe(401);
    expect(await t.server.core.accessCodes.hasAccessCode('demo.local', '202')).toBe(false);
    expect((await events('202')).at(-1)).toEqual(['mailbox_recycled', 'portal', '201@demo.local']);
  });

  it('audit with filters shows only what the caller may see', async () => {
    const alice = await signIn('201', DEMO_PORTAL_PASSWORDS['201']);
    const all = (await api('GET', '/api/domains/demo.local/audit?event=pin_changed', { session: alice })).body.events as Array<{ event: string; mailbox: string }>;
    expect(all.length).toBeGreaterThan(0);
    expect(all.every((e) => e.event === 'pin_changed')).toBe(true);
    expect((await api('GET', '/api/domains/demo.local/audit?event=nope', { session: alice })).status).toBe(400);
    const since = new Date(Date.now() + 60_000).toISOString();
    expect((await api('GET', `/api/domains/demo.local/audit?since=${since}`, { session: alice })).body).toEqual({ events: [] });
    expect((await api('GET', '/api/domains/other.local/audit', { session: alice })).status).toBe(403);
  });

  it('ten wrong passwords lock a portal account: then the right one is refused the same way', async () => {
    for (let i = 0; i < 10; i++) {
      expect((await api('POST', '/api/session', { body: { domain: 'demo.local', user: '201', password: `wrong-${i}` } })).status).toBe(401);
    }
    const locked = await api('POST', '/api/session', { body: { domain: 'demo.local', user: '201', password: DEMO_PORTAL_PASSWORDS['201'] } });
    expect(locked).toMatchObject({ status: 401, body: { error: 'sign_in_failed' } });
    await t.server.core.guard.unlock('portal:demo.local', '201');
  });

  it('serves OpenAPI 3 describing every route', async () => {
    const r = await api('GET', '/openapi.json');
    expect(r.status).toBe(200);
    expect(r.body.openapi).toBe('3.0.3');
    const paths = Object.keys(r.body.paths as object);
    for (const p of ['/api/session', '/api/domains/{domain}/mailboxes', '/api/domains/{domain}/mailboxes/{mailbox}/access-code',
      '/api/domains/{domain}/mailboxes/{mailbox}/reset/preview', '/api/domains/{domain}/mailboxes/{mailbox}/recycle', '/api/domains/{domain}/audit',
      '/api/domains/{domain}/mailboxes/{mailbox}/messages', '/api/domains/{domain}/mailboxes/{mailbox}/messages/{id}/audio',
      '/api/domains/{domain}/mailboxes/{mailbox}/messages/{id}/save', '/api/domains/{domain}/mailboxes/{mailbox}/messages/{id}']) {
      expect(paths, p).toContain(p);
    }
  });
});
