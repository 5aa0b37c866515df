/**
 * The HTTP API of the portal and admin channel, against a whole server (demo tenant) on PGlite
 * and on real Postgres: every route, and every refusal — wrong role, other domain, bad code,
 * missing confirmation, locked sign-in, missing CSRF token, cross-site sign-in — with the audit
 * rows each act leaves. Users of the roles the demo lacks are made with the CLI's own admin
 * operations (LocalAdmin); sign-in lockout also runs on a real Redis when REDIS_URL is set.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalAdmin } from '../../../src/admin/admin.js';
import type { Role } from '../../../src/domain/permissions.js';
import { DEMO_PORTAL_PASSWORDS } from '../../../src/store/demo.js';
import { createApiToken, upsertOperator } from '../../../src/store/accounts.js';
import { listAuditEvents } from '../../../src/store/audit.js';
import { describeEachDatabase } from '../store/helpers.js';
import { encodePcmWav } from '../../../src/messages/wav.js';
import { startTestServer, type TestServer } from '../../support/test-server.js';

interface Session {
  cookie: string;
  csrf: string;
}

interface Answer { status: number; body: Record<string, unknown>; headers: Headers }

const REDIS_URL = process.env.REDIS_URL;
if (!REDIS_URL) console.log('REDIS_URL is not set: the portal sign-in lockout on a real Redis is skipped');

/** The API client of one test server (JSON in and out; a session's cookie and CSRF token). */
function client(base: () => string) {
  const api = async (method: string, path: string, opts: { session?: Session; token?: string; body?: unknown; csrf?: string | null; headers?: Record<string, string> } = {}): Promise<Answer> => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    if (opts.session !== undefined) {
      headers.cookie = opts.session.cookie;
      if (opts.csrf !== null) headers['x-csrf-token'] = opts.csrf ?? opts.session.csrf;
    }
    if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
    const res = await fetch(`${base()}${path}`, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
    const text = await res.text();
    return { status: res.status, body: text === '' ? {} : JSON.parse(text) as Record<string, unknown>, headers: res.headers };
  };
  const session = (r: Answer): Session => {
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return { cookie: (r.headers.get('set-cookie') ?? '').split(';')[0]!, csrf: String(r.body.csrfToken) };
  };
  const signIn = async (user: string, password: string, domain = 'demo.local'): Promise<Session> =>
    session(await api('POST', '/api/session', { body: { domain, user, password } }));
  return { api, signIn, session };
}

describeEachDatabase('portal HTTP API', (variant) => {
  let t: TestServer;
  let base: string;
  let operatorToken: string;
  let admin: LocalAdmin;
  const { api, signIn, session } = client(() => base);

  const events = async (mailbox: string, domain = 'demo.local'): Promise<Array<[string, string, string]>> =>
    (await listAuditEvents(t.server.core.db, { domain, mailbox })).map((e) => [e.event, e.channel, e.actor]);
  const loginWorks = async (mailbox: string, code: string, domain = 'demo.local'): Promise<boolean> =>
    (await t.server.core.accessCodes.verifyLogin(domain, mailbox, code, { channel: 'phone', actor: 'test', callId: null })).result === 'ok';
  const password = (extension: string, pw: string, domain = 'demo.local'): Promise<void> =>
    admin.setUserPassword({ domain, extension, password: pw, actor: 'cli:test' });
  const user = async (extension: string, role: Role, site: string | null, pw: string): Promise<Session> => {
    await admin.createUser({ domain: 'demo.local', extension, displayName: `User ${extension}`, role, site: site ?? undefined, password: pw, actor: 'cli:test' });
    return signIn(extension, pw);
  };
  const wav = encodePcmWav(new Int16Array(12_000).fill(900));
  const deposit = async (mailbox: string, domain = 'demo.local'): Promise<string> => {
    const left = await t.server.core.messages.deposit({ domain, mailbox, caller: '5551234', callerName: 'Pat', wav, durationMs: 1500 });
    expect(left.result).toBe('saved');
    return left.id!;
  };
  const audioKeys = async (mailbox: string, domain = 'demo.local'): Promise<string[]> =>
    (await t.server.core.db.query<{ audio_key: string }>(
      `SELECT x.audio_key FROM messages x JOIN mailboxes m ON m.id = x.mailbox_id JOIN domains d ON d.id = m.domain_id
        WHERE d.name = $1 AND m.number = $2`, [domain, mailbox])).map((r) => r.audio_key);
  const audioGone = async (key: string): Promise<boolean> => t.server.core.audio.get(key).then(() => false, () => true);

  beforeAll(async () => {
    t = await startTestServer(variant);
    base = `http://127.0.0.1:${t.server.http.port}`;
    admin = new LocalAdmin(t.server.core);
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
    await t.server.core.guard.unlock('portal:demo.local', '201');
  });

  it('sign-in from another site is refused (login CSRF); over-long fields never reach argon2 or the counters', async () => {
    const good = { domain: 'demo.local', user: '201', password: DEMO_PORTAL_PASSWORDS['201'] };
    const self = new URL(base).host;
    const foreign: Array<Record<string, string>> = [{ origin: 'http://evil.example' }, { origin: 'null' }, { referer: 'http://evil.example/form' }, { origin: `http://${self}.evil.example` }];
    for (const headers of foreign) {
      const r = await api('POST', '/api/session', { body: good, headers });
      expect(r, JSON.stringify(headers)).toMatchObject({ status: 403, body: { error: 'cross_origin' } });
      expect(r.headers.get('set-cookie')).toBeNull();
    }
    expect((await api('POST', '/api/session', { body: good, headers: { origin: `http://${self}` } })).status).toBe(200);
    expect((await api('POST', '/api/session', { body: good, headers: { referer: `http://${self}/portal/login` } })).status).toBe(200);
    // A signed-in change from another site is refused the same way, before the CSRF check.
    const alice = await signIn('201', DEMO_PORTAL_PASSWORDS['201']);
    expect(await api('POST', '/api/domains/demo.local/mailboxes/202/unlock', { session: alice, headers: { origin: 'http://evil.example' } })).toMatchObject({ status: 403, body: { error: 'cross_origin' } });

    for (const body of [
      { ...good, password: 'x'.repeat(201) }, { ...good, user: '2'.repeat(65) }, { ...good, domain: `${'d'.repeat(250)}.local` }, { operator: 'o'.repeat(65), password: 'x' },
    ]) {
      expect((await api('POST', '/api/session', { body })).status).toBe(400);
    }
    // Nothing of those counted as a failed sign-in of 201.
    expect(await t.server.core.guard.isLocked('portal:demo.local', '201')).toBe(false);
  });

  it('DELETE /api/session signs out: the cookie stops working; it needs the CSRF token like any change', async () => {
    const alice = await signIn('201', DEMO_PORTAL_PASSWORDS['201']);
    expect(await api('DELETE', '/api/session', { session: alice, csrf: null })).toMatchObject({ status: 403, body: { error: 'csrf' } });
    expect((await api('GET', '/api/me', { session: alice })).status).toBe(200);
    const out = await api('DELETE', '/api/session', { session: alice });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(/^vmaccess_session=;/);
    expect((await api('GET', '/api/me', { session: alice })).status).toBe(401);
    expect((await api('DELETE', '/api/session', { session: alice })).status).toBe(401);
    expect((await api('DELETE', '/api/session')).status).toBe(401);
  });

  it('an operator signs in with a session (channel portal) and acts on any domain', async () => {
    const op = session(await api('POST', '/api/session', { body: { operator: 'root', password: 'root-password-123' } }));
    expect((await api('GET', '/api/me', { session: op })).body).toMatchObject({ actor: 'operator:root', channel: 'portal', principal: { kind: 'operator' } });
    expect((await api('POST', '/api/session', { body: { operator: 'root', password: 'wrong-password-1' } })).status).toBe(401);
    expect((await api('POST', '/api/session', { body: { operator: 'nobody', password: 'wrong-password-1' } })).body).toEqual({ error: 'sign_in_failed', message: 'sign-in failed' });
    const others = (await api('GET', '/api/domains/other.local/mailboxes', { session: op })).body.mailboxes as Array<{ number: string }>;
    expect(others.map((m) => m.number)).toEqual(['201']);
    expect((await api('POST', '/api/domains/other.local/mailboxes/201/unlock', { session: op })).status).toBe(200);
    expect((await events('201', 'other.local')).at(-1)).toEqual(['mailbox_unlocked', 'portal', 'operator:root']);
    // A number with no mailbox is simply not there for those who see the whole domain.
    expect(await api('POST', '/api/domains/other.local/mailboxes/999/unlock', { session: op })).toMatchObject({ status: 404, body: { error: 'no_such_mailbox' } });
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

  it('a basic user cannot touch another mailbox, nor reset or recycle anything; nobody crosses domains but the operator', async () => {
    const bob = await signIn('202', DEMO_PORTAL_PASSWORDS['202']);
    const alice = await signIn('201', DEMO_PORTAL_PASSWORDS['201']);
    for (const target of ['201', '203', '290']) {
      const r = await api('PUT', `/api/domains/demo.local/mailboxes/${target}/access-code`, { session: bob, body: { newCode: '5821' } });
      expect(r, target).toMatchObject({ status: 403, body: { error: 'not_in_scope' } });
    }
    expect((await api('POST', '/api/domains/demo.local/mailboxes/203/unlock', { session: bob })).status).toBe(403);
    for (const kind of ['reset', 'recycle']) {
      expect(await api('POST', `/api/domains/demo.local/mailboxes/203/${kind}/preview`, { session: bob }), kind).toMatchObject({ status: 403, body: { error: 'not_in_scope' } });
      expect(await api('POST', `/api/domains/demo.local/mailboxes/203/${kind}`, { session: bob, body: { confirmMessages: 0 } }), kind).toMatchObject({ status: 403, body: { error: 'not_in_scope' } });
      expect(await api('POST', `/api/domains/demo.local/mailboxes/202/${kind}`, { session: bob, body: { confirmMessages: 0 } }), kind).toMatchObject({ status: 403, body: { error: 'own_mailbox' } });
    }
    expect(await t.server.core.accessCodes.hasAccessCode('demo.local', '202')).toBe(true);
    expect(await api('PUT', '/api/domains/other.local/mailboxes/201/access-code', { session: alice, body: { newCode: '5821' } })).toMatchObject({ status: 403, body: { error: 'other_domain' } });
    expect((await api('GET', '/api/domains/other.local/mailboxes', { session: alice })).status).toBe(403);
    const byOperator = await api('PUT', '/api/domains/other.local/mailboxes/201/access-code', { token: operatorToken, body: { newCode: '5821' } });
    expect(byOperator.status).toBe(204);
    expect((await events('201', 'other.local')).at(-1)).toEqual(['pin_changed', 'admin', 'token:root']);
    // Mailboxes: each sees what their role allows (Bob also the shared mailbox he is a member of).
    const bobs = (await api('GET', '/api/domains/demo.local/mailboxes', { session: bob })).body.mailboxes as Array<{ number: string }>;
    expect(bobs.map((m) => m.number)).toEqual(['202', '290']);
    const alices = (await api('GET', '/api/domains/demo.local/mailboxes', { session: alice })).body.mailboxes as Array<{ number: string; shared: boolean; members: string[]; locked: boolean | null }>;
    expect(alices.map((m) => m.number)).toEqual(['201', '202', '203', '204', '290']);
    expect(alices.find((m) => m.number === '290')).toMatchObject({ shared: true, members: ['201', '202'], locked: false });
  });

  it('every act on another domain\'s mailbox is refused to a user: reset, recycle, previews, unlock, require change, messages', async () => {
    const alice = await signIn('201', DEMO_PORTAL_PASSWORDS['201']);
    const id = await deposit('201', 'other.local');
    const before = await t.server.core.messages.counts('other.local', '201');
    const attempts: Array<[string, string, unknown?]> = [
      ['POST', '/api/domains/other.local/mailboxes/201/reset/preview'],
      ['POST', '/api/domains/other.local/mailboxes/201/recycle/preview'],
      ['POST', '/api/domains/other.local/mailboxes/201/reset', { confirmMessages: 1 }],
      ['POST', '/api/domains/other.local/mailboxes/201/recycle', { confirmMessages: 1 }],
      ['POST', '/api/domains/other.local/mailboxes/201/unlock'],
      ['POST', '/api/domains/other.local/mailboxes/201/require-change'],
      ['GET', '/api/domains/other.local/mailboxes/201/messages'],
      ['GET', `/api/domains/other.local/mailboxes/201/messages/${id}/audio`],
      ['POST', `/api/domains/other.local/mailboxes/201/messages/${id}/save`],
      ['DELETE', `/api/domains/other.local/mailboxes/201/messages/${id}`],
      ['GET', '/api/domains/other.local/audit'],
    ];
    for (const [method, path, body] of attempts) {
      expect(await api(method, path, { session: alice, body }), `${method} ${path}`).toMatchObject({ status: 403, body: { error: 'other_domain' } });
    }
    expect(await t.server.core.messages.counts('other.local', '201')).toEqual(before);
    expect(await t.server.core.accessCodes.hasAccessCode('other.local', '201')).toBe(true);
    expect((await events('201', 'other.local')).map(([e]) => e)).not.toContain('pin_change_required');
  });

  it('outside one\'s scope, a mailbox that exists and one that does not answer exactly alike', async () => {
    const bob = await signIn('202', DEMO_PORTAL_PASSWORDS['202']);
    const requests: Array<[string, string, unknown?]> = [
      ['GET', '/messages'], ['POST', '/unlock'], ['POST', '/require-change'], ['POST', '/reset/preview'],
      ['PUT', '/access-code', { newCode: '5821' }], ['GET', '/messages/1/audio'], ['DELETE', '/messages/1'],
    ];
    for (const [method, suffix, body] of requests) {
      const existing = await api(method, `/api/domains/demo.local/mailboxes/203${suffix}`, { session: bob, body });
      const missing = await api(method, `/api/domains/demo.local/mailboxes/999${suffix}`, { session: bob, body });
      expect(existing.status, `${method} ${suffix}`).toBe(403);
      expect([missing.status, missing.body], `${method} ${suffix}`).toEqual([existing.status, existing.body]);
    }
    const existing = await api('GET', '/api/domains/demo.local/audit?mailbox=203', { session: bob });
    const missing = await api('GET', '/api/domains/demo.local/audit?mailbox=999', { session: bob });
    expect([missing.status, missing.body]).toEqual([existing.status, existing.body]);
    expect(existing.status).toBe(403);
    // Someone who sees the whole domain is told the truth.
    const alice = await signIn('201', DEMO_PORTAL_PASSWORDS['201']);
    expect(await api('GET', '/api/domains/demo.local/mailboxes/999/messages', { session: alice })).toMatchObject({ status: 404, body: { error: 'no_such_mailbox' } });
  });

  it('an advanced user manages the basic users of their site, not the office manager, and may not recycle', async () => {
    await password('204', 'dan-portal-5150');
    const session = await signIn('204', 'dan-portal-5150');
    const visible = (await api('GET', '/api/domains/demo.local/mailboxes', { session })).body.mailboxes as Array<{ number: string }>;
    expect(visible.map((m) => m.number)).toEqual(['202', '203', '204']);
    expect((await api('POST', '/api/domains/demo.local/mailboxes/203/unlock', { session })).status).toBe(200);
    expect((await api('PUT', '/api/domains/demo.local/mailboxes/201/access-code', { session, body: { newCode: '5821' } })).status).toBe(403);
    expect(await api('POST', '/api/domains/demo.local/mailboxes/202/recycle/preview', { session })).toMatchObject({ status: 403, body: { error: 'role' } });
    expect(await api('POST', '/api/domains/demo.local/mailboxes/202/reset', { session, body: { confirmMessages: 0 } })).toMatchObject({ status: 403, body: { error: 'role' } });
  });

  it('site manager, call-center supervisor and agent: each within their site and role', async () => {
    const sites = await user('210', 'site_manager', 'hq', 'site-manager-pw-210');
    const supervisor = await user('211', 'call_center_supervisor', 'hq', 'supervisor-pw-211');
    const agent = await user('212', 'call_center_agent', 'hq', 'agent-pw-2120');
    await admin.createUser({ domain: 'demo.local', extension: '213', displayName: 'East Agent', role: 'call_center_agent', site: 'east', actor: 'cli:test' });
    await admin.createUser({ domain: 'demo.local', extension: '214', displayName: 'No Site', role: 'basic', actor: 'cli:test' });
    const numbers = async (s: Session): Promise<string[]> =>
      ((await api('GET', '/api/domains/demo.local/mailboxes', { session: s })).body.mailboxes as Array<{ number: string }>).map((m) => m.number);

    // Site manager: every user of site hq but the office manager; reset and recycle them.
    expect(await numbers(sites)).toEqual(['202', '203', '204', '210', '211', '212']);
    expect(await api('POST', '/api/domains/demo.local/mailboxes/212/recycle/preview', { session: sites })).toMatchObject({ status: 200, body: { messages: 0 } });
    expect((await api('PUT', '/api/domains/demo.local/mailboxes/211/access-code', { session: sites, body: { newCode: '7412' } })).status).toBe(204);
    for (const target of ['201', '213', '214', '290']) {
      expect(await api('POST', `/api/domains/demo.local/mailboxes/${target}/reset/preview`, { session: sites }), target).toMatchObject({ status: 403, body: { error: 'not_in_scope' } });
    }
    // Supervisor: the agents of the same site; no reset.
    expect(await numbers(supervisor)).toEqual(['211', '212']);
    expect((await api('PUT', '/api/domains/demo.local/mailboxes/212/access-code', { session: supervisor, body: { newCode: '9035' } })).status).toBe(204);
    expect((await events('212')).at(-1)).toEqual(['pin_set', 'portal', '211@demo.local']);
    expect(await loginWorks('212', '9035')).toBe(true);
    expect((await api('POST', '/api/domains/demo.local/mailboxes/212/unlock', { session: supervisor })).status).toBe(200);
    expect(await api('POST', '/api/domains/demo.local/mailboxes/212/reset/preview', { session: supervisor })).toMatchObject({ status: 403, body: { error: 'role' } });
    for (const target of ['202', '213', '210']) {
      expect(await api('POST', `/api/domains/demo.local/mailboxes/${target}/unlock`, { session: supervisor }), target).toMatchObject({ status: 403, body: { error: 'not_in_scope' } });
    }
    // Agent: only their own.
    expect(await numbers(agent)).toEqual(['212']);
    expect(await api('POST', '/api/domains/demo.local/mailboxes/211/unlock', { session: agent })).toMatchObject({ status: 403, body: { error: 'not_in_scope' } });
    expect((await api('GET', '/api/domains/demo.local/mailboxes/212/messages', { session: agent })).status).toBe(200);
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

  it('no code yet: a stale sign-in must sign in again (a current code cannot stand in); a fresh one sets it', async () => {
    await password('203', 'carol-portal-pw1');
    const stale = await signIn('203', 'carol-portal-pw1');
    await t.server.core.db.query(`UPDATE portal_sessions SET authenticated_at = now() - interval '10 minutes'`);
    expect(await api('PUT', '/api/domains/demo.local/mailboxes/203/access-code', { session: stale, body: { newCode: '5821' } })).toMatchObject({ status: 403, body: { error: 'needs_fresh_sign_in' } });
    expect(await api('PUT', '/api/domains/demo.local/mailboxes/203/access-code', { session: stale, body: { newCode: '5821', currentCode: '0000' } })).toMatchObject({ status: 403, body: { error: 'needs_fresh_sign_in' } });
    expect(await t.server.core.accessCodes.hasAccessCode('demo.local', '203')).toBe(false);
    const fresh = await signIn('203', 'carol-portal-pw1');
    expect((await api('PUT', '/api/domains/demo.local/mailboxes/203/access-code', { session: fresh, body: { newCode: '5821' } })).status).toBe(204);
    expect((await events('203')).at(-1)).toEqual(['pin_set', 'portal', '203@demo.local']);
  });

  it('a new portal password ends the user\'s sessions', async () => {
    const first = await signIn('203', 'carol-portal-pw1');
    const second = await signIn('203', 'carol-portal-pw1');
    const alice = await signIn('201', DEMO_PORTAL_PASSWORDS['201']);
    await password('203', 'carol-portal-pw2');
    for (const s of [first, second]) expect((await api('GET', '/api/me', { session: s })).status).toBe(401);
    expect((await api('GET', '/api/me', { session: alice })).status).toBe(200);
    expect((await api('POST', '/api/session', { body: { domain: 'demo.local', user: '203', password: 'carol-portal-pw1' } })).status).toBe(401);
    await signIn('203', 'carol-portal-pw2');
    expect((await events('203')).at(-1)).toEqual(['portal_password_set', 'cli', 'cli:test']);
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
    expect(await api('POST', '/api/domains/demo.local/mailboxes/214/require-change', { session: alice })).toMatchObject({ status: 409, body: { error: 'no_access_code' } });
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
    const id = await deposit('202');
    const bob = await signIn('202', DEMO_PORTAL_PASSWORDS['202']);
    const list = await api('GET', '/api/domains/demo.local/mailboxes/202/messages', { session: bob });
    expect(list.status).toBe(200);
    expect(list.body).toEqual([{ id, caller: '5551234', callerName: 'Pat', receivedAt: expect.any(String), durationMs: 1500, state: 'new', folder: 'inbox' }]);
    const audio = await fetch(`${base}/api/domains/demo.local/mailboxes/202/messages/${id}/audio`, { headers: { cookie: bob.cookie } });
    expect(audio.status).toBe(200);
    expect(audio.headers.get('content-type')).toBe('audio/wav');
    expect(Buffer.from(await audio.arrayBuffer())).toEqual(wav);
    // A basic user sees nobody else's messages; the office manager (201) and the operator do.
    expect((await api('GET', '/api/domains/demo.local/mailboxes/201/messages', { session: bob })).status).toBe(403);
    const alice = await signIn('201', DEMO_PORTAL_PASSWORDS['201']);
    expect((await api('GET', '/api/domains/demo.local/mailboxes/202/messages', { session: alice })).status).toBe(200);
    expect((await api('GET', '/api/domains/demo.local/mailboxes/202/messages', { token: operatorToken })).status).toBe(200);
    // Save, then delete (CSRF needed with a cookie); a message of another mailbox is not found.
    expect((await api('POST', `/api/domains/demo.local/mailboxes/202/messages/${id}/save`, { session: bob, csrf: null })).status).toBe(403);
    expect((await api('POST', `/api/domains/demo.local/mailboxes/202/messages/${id}/save`, { session: bob })).status).toBe(204);
    expect(await messages.counts('demo.local', '202')).toEqual({ new: 0, saved: 1 });
    expect((await api('DELETE', `/api/domains/demo.local/mailboxes/201/messages/${id}`, { session: alice })).status).toBe(404);
    expect((await api('DELETE', `/api/domains/demo.local/mailboxes/202/messages/${id}`, { session: bob })).status).toBe(204);
    expect((await api('DELETE', `/api/domains/demo.local/mailboxes/202/messages/${id}`, { session: bob })).status).toBe(404);
    expect((await api('GET', `/api/domains/demo.local/mailboxes/202/messages/${id}/audio`, { session: bob })).status).toBe(404);
    expect((await api('GET', '/api/domains/demo.local/mailboxes/202/messages/x1/audio', { session: bob })).status).toBe(400);
    expect((await events('202')).at(-1)).toEqual(['message_deleted', 'portal', '202@demo.local']);
    expect(changed.filter((c) => c === '202@demo.local')).toHaveLength(3); // deposit, save, delete
  });

  it('a manager handles the messages of a mailbox in their scope: save and delete are checked as such', async () => {
    const dan = await signIn('204', 'dan-portal-5150');
    const id = await deposit('202');
    expect((await api('POST', `/api/domains/demo.local/mailboxes/202/messages/${id}/save`, { session: dan })).status).toBe(204);
    expect((await api('DELETE', `/api/domains/demo.local/mailboxes/202/messages/${id}`, { session: dan })).status).toBe(204);
    expect((await events('202')).at(-1)).toEqual(['message_deleted', 'portal', '204@demo.local']);
    // Out of scope (the office manager's mailbox): neither.
    const hers = await deposit('201');
    expect(await api('POST', `/api/domains/demo.local/mailboxes/201/messages/${hers}/save`, { session: dan })).toMatchObject({ status: 403, body: { error: 'not_in_scope' } });
    expect(await api('DELETE', `/api/domains/demo.local/mailboxes/201/messages/${hers}`, { session: dan })).toMatchObject({ status: 403, body: { error: 'not_in_scope' } });
    expect(await t.server.core.messages.counts('demo.local', '201')).toEqual({ new: 1, saved: 0 });
  });

  it('members of a shared mailbox list, hear, save and delete its messages; they do not manage it', async () => {
    const id = await deposit('290');
    const other = await deposit('290');
    const bob = await signIn('202', DEMO_PORTAL_PASSWORDS['202']);
    const list = await api('GET', '/api/domains/demo.local/mailboxes/290/messages', { session: bob });
    expect((list.body as unknown as Array<{ id: string }>).map((m) => m.id).sort()).toEqual([id, other].sort());
    const audio = await fetch(`${base}/api/domains/demo.local/mailboxes/290/messages/${id}/audio`, { headers: { cookie: bob.cookie } });
    expect(audio.status).toBe(200);
    expect((await api('POST', `/api/domains/demo.local/mailboxes/290/messages/${id}/save`, { session: bob })).status).toBe(204);
    expect((await api('DELETE', `/api/domains/demo.local/mailboxes/290/messages/${id}`, { session: bob })).status).toBe(204);
    expect((await events('290')).at(-1)).toEqual(['message_deleted', 'portal', '202@demo.local']);
    for (const [method, suffix, body] of [
      ['PUT', 'access-code', { newCode: '5821' }], ['POST', 'require-change'], ['POST', 'unlock'], ['POST', 'reset/preview'], ['POST', 'recycle', { confirmMessages: 1 }],
    ] as const) {
      expect(await api(method, `/api/domains/demo.local/mailboxes/290/${suffix}`, { session: bob, body }), suffix).toMatchObject({ status: 403, body: { error: 'not_in_scope' } });
    }
    expect(await api('GET', '/api/domains/demo.local/audit?mailbox=290', { session: bob })).toMatchObject({ status: 403, body: { error: 'not_in_scope' } });
    // Not a member (and not managing it): nothing.
    const dan = await signIn('204', 'dan-portal-5150');
    expect(await api('GET', '/api/domains/demo.local/mailboxes/290/messages', { session: dan })).toMatchObject({ status: 403, body: { error: 'not_in_scope' } });
    expect(await api('DELETE', `/api/domains/demo.local/mailboxes/290/messages/${other}`, { session: dan })).toMatchObject({ status: 403, body: { error: 'not_in_scope' } });
    expect(await t.server.core.messages.counts('demo.local', '290')).toEqual({ new: 1, saved: 0 });
  });

  it('reset shows the messages it will delete and needs that number back; then first-time setup, no greeting, no name', async () => {
    const alice = await signIn('201', DEMO_PORTAL_PASSWORDS['201']);
    const db = t.server.core.db;
    for (let i = 0; i < 3; i++) await deposit('204');
    // A recorded greeting and name: the audio of two of those messages, handed to the mailbox.
    const [greeting, name, ...rest] = await audioKeys('204');
    await db.query('DELETE FROM messages WHERE audio_key = ANY($1)', [[greeting, name]]);
    await db.query(`UPDATE mailboxes SET greeting_key = $1, name_key = $2 WHERE number = '204' AND domain_id = (SELECT id FROM domains WHERE name = 'demo.local')`, [greeting, name]);
    await deposit('204');
    const keys = [...rest, ...(await audioKeys('204')).filter((k) => !rest.includes(k))];
    expect(keys).toHaveLength(2);
    for (const key of [greeting!, name!, ...keys]) expect(await audioGone(key)).toBe(false);

    expect((await api('POST', '/api/domains/demo.local/mailboxes/204/reset/preview', { session: alice })).body).toEqual({ messages: 2 });
    expect(await api('POST', '/api/domains/demo.local/mailboxes/204/reset', { session: alice, body: { confirmMessages: 1 } })).toMatchObject({ status: 409, body: { error: 'confirmation_mismatch', messages: 2 } });
    expect((await api('POST', '/api/domains/demo.local/mailboxes/204/reset', { session: alice, body: {} })).status).toBe(400);
    expect(await audioKeys('204')).toHaveLength(2);
    const done = await api('POST', '/api/domains/demo.local/mailboxes/204/reset', { session: alice, body: { confirmMessages: 2 } });
    expect(done).toMatchObject({ status: 200, body: { messagesDeleted: 2 } });
    expect(await audioKeys('204')).toEqual([]);
    for (const key of [greeting!, name!, ...keys]) expect(await audioGone(key), key).toBe(true);
    const media = await db.query(`SELECT greeting_key, name_key FROM mailboxes WHERE number = '204' AND domain_id = (SELECT id FROM domains WHERE name = 'demo.local')`);
    expect(media).toEqual([{ greeting_key: null, name_key: null }]);
    expect(await t.server.core.accessCodes.hasAccessCode('demo.local', '204')).toBe(false);
    expect((await events('204')).at(-1)).toEqual(['mailbox_reset', 'portal', '201@demo.local']);
    // Dan's portal account survives a reset (only a recycle removes it).
    await signIn('204', 'dan-portal-5150');
  });

  it('audit: the rows a caller may read, filtered in the database by mailbox, event, since and until (as instants), oldest first, limited', async () => {
    const alice = await signIn('201', DEMO_PORTAL_PASSWORDS['201']);
    const dan = await signIn('204', 'dan-portal-5150');
    const bob = await signIn('202', DEMO_PORTAL_PASSWORDS['202']);
    // A failed login with a number that has no mailbox, and rows of 201 and 290.
    for (const mailbox of ['999', '201']) await t.server.core.accessCodes.verifyLogin('demo.local', mailbox, '0000', { channel: 'phone', actor: 'test', callId: null });
    const read = async (s: Session, query = ''): Promise<Array<{ at: string; mailbox: string; event: string }>> => {
      const r = await api('GET', `/api/domains/demo.local/audit${query}`, { session: s });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return r.body.events as Array<{ at: string; mailbox: string; event: string }>;
    };
    const everything = await read(alice);
    const mailboxesIn = (rows: Array<{ mailbox: string }>): string[] => [...new Set(rows.map((e) => e.mailbox))].sort();
    expect(mailboxesIn(everything)).toEqual(expect.arrayContaining(['201', '202', '203', '204', '290', '999']));
    expect(everything.map((e) => e.at)).toEqual([...everything.map((e) => e.at)].sort());
    // Dan (advanced user, site hq): his own and the basic users and agents of his site, nothing else.
    expect(mailboxesIn(await read(dan))).toEqual(['202', '203', '204', '212']);
    expect(mailboxesIn(await read(bob))).toEqual(['202']);
    expect(await api('GET', '/api/domains/demo.local/audit?mailbox=201', { session: dan })).toMatchObject({ status: 403, body: { error: 'not_in_scope' } });
    expect(await api('GET', '/api/domains/demo.local/audit?mailbox=999', { session: dan })).toMatchObject({ status: 403, body: { error: 'not_in_scope' } });
    expect((await read(alice, '?mailbox=999')).map((e) => e.event)).toEqual(['login_failed']);

    const pinChanged = await read(alice, '?event=pin_changed&mailbox=202');
    expect(pinChanged.length).toBeGreaterThan(1);
    expect(pinChanged.every((e) => e.event === 'pin_changed' && e.mailbox === '202')).toBe(true);
    // until/since are instants: the first row's time written in another zone still bounds it.
    const first = pinChanged[0]!.at;
    const inNewYork = new Date(Date.parse(first) - 5 * 3600_000).toISOString().replace('Z', '-05:00');
    expect((await read(alice, `?event=pin_changed&mailbox=202&until=${encodeURIComponent(inNewYork)}`)).map((e) => e.at)).toEqual([first]);
    expect(await read(alice, `?event=pin_changed&mailbox=202&since=${encodeURIComponent(inNewYork)}`)).toEqual(pinChanged);
    expect(await read(alice, `?until=${encodeURIComponent('2000-01-01T00:00:00+02:00')}`)).toEqual([]);
    expect(await read(alice, `?since=${new Date(Date.now() + 60_000).toISOString()}`)).toEqual([]);
    // limit: the oldest first, and whether there is more.
    const two = await api('GET', '/api/domains/demo.local/audit?limit=2', { session: alice });
    expect(two.body).toEqual({ events: everything.slice(0, 2), truncated: true });
    expect((await api('GET', `/api/domains/demo.local/audit?limit=${everything.length}`, { session: alice })).body).toMatchObject({ truncated: false });
    for (const bad of ['since=yesterday', 'since=2025-02-30T00:00:00Z', 'until=2025-01-01T10:00:00', 'limit=0', 'limit=10001', 'event=nope', 'mailbox=2x']) {
      expect(await api('GET', `/api/domains/demo.local/audit?${bad}`, { session: alice }), bad).toMatchObject({ status: 400 });
    }
    expect((await api('GET', '/api/domains/other.local/audit', { session: alice })).status).toBe(403);
  });

  it('recycle: a wrong count is refused (409) and changes nothing; then messages (rows and audio), code and portal password are gone', async () => {
    const alice = await signIn('201', DEMO_PORTAL_PASSWORDS['201']);
    await password('202', DEMO_PORTAL_PASSWORDS['202']);
    const bob = await signIn('202', DEMO_PORTAL_PASSWORDS['202']);
    await deposit('202');
    await deposit('202');
    const keys = await audioKeys('202');
    expect(keys).toHaveLength(2);
    expect((await api('POST', '/api/domains/demo.local/mailboxes/202/recycle/preview', { session: alice })).body).toEqual({ messages: 2 });
    expect(await api('POST', '/api/domains/demo.local/mailboxes/202/recycle', { session: alice, body: { confirmMessages: 0 } })).toMatchObject({ status: 409, body: { error: 'confirmation_mismatch', messages: 2 } });
    expect(await audioKeys('202')).toEqual(keys);
    expect((await api('GET', '/api/me', { session: bob })).status).toBe(200);
    expect(await t.server.core.accessCodes.hasAccessCode('demo.local', '202')).toBe(true);

    expect(await api('POST', '/api/domains/demo.local/mailboxes/202/recycle', { session: alice, body: { confirmMessages: 2 } })).toMatchObject({ status: 200, body: { messagesDeleted: 2 } });
    expect(await audioKeys('202')).toEqual([]);
    for (const key of keys) expect(await audioGone(key)).toBe(true);
    expect((await api('GET', '/api/me', { session: bob })).status).toBe(401);
    expect((await api('POST', '/api/session', { body: { domain: 'demo.local', user: '202', password: DEMO_PORTAL_PASSWORDS['202'] } })).status).toBe(401);
    expect(await t.server.core.accessCodes.hasAccessCode('demo.local', '202')).toBe(false);
    expect((await events('202')).at(-1)).toEqual(['mailbox_recycled', 'portal', '201@demo.local']);
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

  describe.skipIf(!REDIS_URL)('sign-in lockout on a real Redis', () => {
    const keyPrefix = `vmaccess-portal-test-${randomBytes(6).toString('hex')}:`;
    let r: TestServer;
    let redisBase = '';
    const redisClient = client(() => redisBase);
    beforeAll(async () => {
      r = await startTestServer(variant, { REDIS_URL: REDIS_URL!, REDIS_KEY_PREFIX: keyPrefix });
      redisBase = `http://127.0.0.1:${r.server.http.port}`;
    });
    afterAll(async () => {
      await r?.stop();
      const inspector = new Redis(REDIS_URL!, { maxRetriesPerRequest: 1 });
      const keys = await inspector.keys(`${keyPrefix}*`);
      if (keys.length > 0) await inspector.del(...keys);
      await inspector.quit();
    });

    it('ten wrong passwords lock the account in Redis (its own namespace); the right one is refused until unlocked', async () => {
      const body = (password: string): { body: unknown } => ({ body: { domain: 'demo.local', user: '201', password } });
      for (let i = 0; i < 10; i++) expect((await redisClient.api('POST', '/api/session', body(`wrong-${i}`))).status).toBe(401);
      expect(await redisClient.api('POST', '/api/session', body(DEMO_PORTAL_PASSWORDS['201']))).toMatchObject({ status: 401, body: { error: 'sign_in_failed' } });
      const inspector = new Redis(REDIS_URL!, { maxRetriesPerRequest: 1 });
      try {
        expect(await inspector.exists(`${keyPrefix}lockout:portal:demo.local:201:lock`)).toBe(1);
        // The phone's lock of mailbox 201 is another key: web failures do not lock the phone.
        expect(await inspector.exists(`${keyPrefix}lockout:demo.local:201:lock`)).toBe(0);
      } finally {
        await inspector.quit();
      }
      expect(await r.server.core.accessCodes.verifyLogin('demo.local', '201', '4826', { channel: 'phone', actor: 'test', callId: null })).toMatchObject({ result: 'ok' });
      await r.server.core.guard.unlock('portal:demo.local', '201');
      expect((await redisClient.api('POST', '/api/session', body(DEMO_PORTAL_PASSWORDS['201']))).status).toBe(200);
    });
  });
});
