import { Writable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createLogger } from '../../../src/log.js';
import { AccessCodeHasher } from '../../../src/domain/access-code-hasher.js';
import { AccessCodeService, type CallContext } from '../../../src/mailbox/access-code-service.js';
import { listAuditEvents, type AuditChannel, type AuditEvent } from '../../../src/store/audit.js';
import type { Database } from '../../../src/store/database.js';
import { seedDemo } from '../../../src/store/demo.js';
import { describeEachDatabase, TEST_PEPPER, withTestDatabase, type TestDatabase } from './helpers.js';

/** Caller identities and call ids without digits, so any digit in an audit field would stand out. */
const phone: CallContext = { channel: 'phone', actor: 'sip:alice@demo.local', callId: 'call-abc' };
const cli: CallContext = { channel: 'cli', actor: 'operator', callId: null };

/** Every access code this file types; none may appear in a log line or an audit field. */
const CODES_USED = new Set<string>();
const code = (c: string): string => { CODES_USED.add(c); return c; };

describeEachDatabase('access-code service', (variant) => {
  let t: TestDatabase;
  let db: Database;
  let service: AccessCodeService;
  const hasher = new AccessCodeHasher(TEST_PEPPER);
  const logLines: string[] = [];
  let nextMailbox = 500;

  /** A fresh personal mailbox in demo.local, with `initialCode` set through the service. */
  async function newMailbox(initialCode?: string): Promise<string> {
    const number = String(nextMailbox++);
    await db.transaction(async (tx) => {
      const [domain] = await tx.query<{ id: number }>(`SELECT id FROM domains WHERE name = 'demo.local'`);
      const [user] = await tx.query<{ id: number }>(
        `INSERT INTO users (domain_id, extension, display_name, role) VALUES ($1, $2, 'Test User', 'basic') RETURNING id`,
        [domain?.id, number]);
      await tx.query(`INSERT INTO mailboxes (domain_id, number, owner_user_id) VALUES ($1, $2, $3)`, [domain?.id, number, user?.id]);
    });
    if (initialCode !== undefined) {
      expect(await service.changeAccessCode('demo.local', number, code(initialCode), cli)).toEqual({ result: 'ok' });
    }
    return number;
  }

  const audit = (mailbox: string): Promise<AuditEvent[]> => listAuditEvents(db, { domain: 'demo.local', mailbox });
  const historyCount = async (mailbox: string): Promise<number> => {
    const rows = await db.query<{ n: number }>(
      `SELECT count(*)::integer AS n FROM access_code_history h JOIN mailboxes m ON m.id = h.mailbox_id
         JOIN domains d ON d.id = m.domain_id WHERE d.name = 'demo.local' AND m.number = $1`, [mailbox]);
    return rows[0]?.n ?? -1;
  };

  beforeAll(async () => {
    t = await withTestDatabase(variant);
    db = t.db;
    await seedDemo(db, hasher);
    const logger = createLogger('trace', new Writable({ write(chunk, _e, cb) { logLines.push(String(chunk)); cb(); } }));
    service = new AccessCodeService({ db, hasher, logger });
  });
  afterAll(async () => { await t?.cleanup(); });

  it('logs in with the right code and audits login_succeeded with channel, actor and call id', async () => {
    expect(await service.verifyLogin('demo.local', '201', code('4826'), phone)).toEqual({ result: 'ok', mustChange: false });
    const events = await audit('201');
    expect(events.at(-1)).toEqual({
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      domain: 'demo.local', mailbox: '201', event: 'login_succeeded', channel: 'phone',
      actor: 'sip:alice@demo.local', callId: 'call-abc',
    });
    expect(Math.abs(Date.parse(events.at(-1)!.at) - Date.now())).toBeLessThan(60_000);
  });

  it('refuses a wrong code and audits login_failed', async () => {
    expect(await service.verifyLogin('demo.local', '201', code('4827'), phone)).toEqual({ result: 'rejected' });
    expect((await audit('201')).at(-1)).toMatchObject({ mailbox: '201', event: 'login_failed', callId: 'call-abc' });
  });

  it('answers a nonexistent mailbox and a mailbox without a code exactly like a wrong code', async () => {
    expect(await service.verifyLogin('demo.local', '299', code('4826'), phone)).toEqual({ result: 'rejected' });
    expect(await service.verifyLogin('demo.local', '203', code('4826'), phone)).toEqual({ result: 'rejected' });
    expect(await service.verifyLogin('nowhere.example', '201', code('4826'), phone)).toEqual({ result: 'rejected' });
    expect((await audit('299')).map((e) => [e.mailbox, e.event])).toEqual([['299', 'login_failed']]);
    expect((await audit('203')).map((e) => [e.mailbox, e.event])).toEqual([['203', 'login_failed']]);
    expect(await listAuditEvents(db, { domain: 'nowhere.example' })).toHaveLength(1);
  });

  it('matches the domain case-insensitively', async () => {
    expect(await service.verifyLogin('DEMO.Local', '202', code('7391'), phone)).toEqual({ result: 'ok', mustChange: false });
    expect((await audit('202')).at(-1)).toMatchObject({ domain: 'demo.local', event: 'login_succeeded' });
  });

  it('reports must_change after login', async () => {
    const mailbox = await newMailbox('3865');
    await db.query(`UPDATE access_code_credentials SET must_change = true
                     WHERE mailbox_id = (SELECT id FROM mailboxes WHERE number = $1)`, [mailbox]);
    expect(await service.verifyLogin('demo.local', mailbox, code('3865'), phone)).toEqual({ result: 'ok', mustChange: true });
    expect(await service.changeAccessCode('demo.local', mailbox, code('3866'), phone)).toEqual({ result: 'ok' });
    expect(await service.verifyLogin('demo.local', mailbox, code('3866'), phone)).toEqual({ result: 'ok', mustChange: false });
  });

  it('tells whether a mailbox has a code', async () => {
    expect(await service.hasAccessCode('demo.local', '201')).toBe(true);
    expect(await service.hasAccessCode('demo.local', '203')).toBe(false);
    expect(await service.hasAccessCode('demo.local', '299')).toBe(false);
  });

  it('checks a proposed code against every rule without writing anything', async () => {
    const mailbox = await newMailbox('5821');
    const before = await db.query('SELECT hash, set_at FROM access_code_credentials ORDER BY mailbox_id');
    const auditBefore = await audit(mailbox);
    const cases: [string, string][] = [
      ['58a1', 'notDigits'], ['582', 'tooShort'], ['58215821582', 'tooLong'], ['7777', 'allSameDigit'],
      ['3456', 'sequential'], ['5821', 'sameAsCurrent'],
    ];
    for (const [proposed, reason] of cases) {
      expect(await service.checkNewAccessCode('demo.local', mailbox, code(proposed)), proposed).toEqual({ result: 'rejected', reason });
    }
    // The mailbox number itself (a 4-digit mailbox so that the length rule does not fire first).
    expect(await service.checkNewAccessCode('demo.local', '290', code('0290'))).toEqual({ result: 'ok' });
    await db.query(`INSERT INTO mailboxes (domain_id, number, shared, display_name)
                    SELECT id, '4719', true, 'Sales' FROM domains WHERE name = 'demo.local'`);
    expect(await service.checkNewAccessCode('demo.local', '4719', code('4719'))).toEqual({ result: 'rejected', reason: 'mailboxNumber' });
    expect(await service.checkNewAccessCode('demo.local', mailbox, code('9352'))).toEqual({ result: 'ok' });
    expect(await db.query('SELECT hash, set_at FROM access_code_credentials ORDER BY mailbox_id')).toEqual(before);
    expect(await audit(mailbox)).toEqual(auditBefore);
  });

  it('changes a code in one step: the old code stops working at once, pin_changed is audited', async () => {
    expect(await service.changeAccessCode('demo.local', '204', code('3952'), phone)).toEqual({ result: 'ok' });
    expect(await service.verifyLogin('demo.local', '204', code('5150'), phone)).toEqual({ result: 'rejected' });
    expect(await service.verifyLogin('demo.local', '204', code('3952'), phone)).toEqual({ result: 'ok', mustChange: false });
    expect((await audit('204')).map((e) => e.event)).toEqual(['pin_changed', 'login_failed', 'login_succeeded']);
    expect(await historyCount('204')).toBe(1);
  });

  it('refuses a change that breaks a rule, and writes nothing', async () => {
    expect(await service.changeAccessCode('demo.local', '204', code('3952'), phone))
      .toEqual({ result: 'rejected', reason: 'sameAsCurrent' });
    expect(await service.changeAccessCode('demo.local', '204', code('5150'), phone))
      .toEqual({ result: 'rejected', reason: 'recentlyUsed' });
    expect(await service.changeAccessCode('demo.local', '204', code('1234'), phone))
      .toEqual({ result: 'rejected', reason: 'sequential' });
    expect(await service.verifyLogin('demo.local', '204', code('3952'), phone)).toEqual({ result: 'ok', mustChange: false });
    expect((await audit('204')).filter((e) => e.event === 'pin_changed')).toHaveLength(1);
  });

  it('keeps the last 3 previous codes: those are refused, an older one is allowed again', async () => {
    const mailbox = await newMailbox('1470');
    for (const next of ['2581', '3692', '4703', '5814']) {
      expect(await service.changeAccessCode('demo.local', mailbox, code(next), phone), next).toEqual({ result: 'ok' });
    }
    expect(await historyCount(mailbox)).toBe(3);
    expect(await service.checkNewAccessCode('demo.local', mailbox, '5814')).toEqual({ result: 'rejected', reason: 'sameAsCurrent' });
    for (const recent of ['4703', '3692', '2581']) {
      expect(await service.checkNewAccessCode('demo.local', mailbox, recent), recent).toEqual({ result: 'rejected', reason: 'recentlyUsed' });
    }
    expect(await service.changeAccessCode('demo.local', mailbox, '1470', phone)).toEqual({ result: 'ok' });
    expect(await historyCount(mailbox)).toBe(3);
    // 2581 dropped out of the history when 5814 was retired.
    expect(await service.checkNewAccessCode('demo.local', mailbox, '2581')).toEqual({ result: 'ok' });
    expect(await service.checkNewAccessCode('demo.local', mailbox, '3692')).toEqual({ result: 'rejected', reason: 'recentlyUsed' });
  });

  it('sets a first code (pin_set), and a second first-time setup can never replace it', async () => {
    expect(await service.hasAccessCode('demo.local', '203')).toBe(false);
    expect(await service.changeAccessCode('demo.local', '203', code('6283'), phone, { initial: true })).toEqual({ result: 'ok' });
    expect(await service.changeAccessCode('demo.local', '203', code('6284'), phone, { initial: true })).toEqual({ result: 'unavailable' });
    expect(await service.verifyLogin('demo.local', '203', code('6283'), phone)).toEqual({ result: 'ok', mustChange: false });
    expect(await service.verifyLogin('demo.local', '203', code('6284'), phone)).toEqual({ result: 'rejected' });
    expect((await audit('203')).map((e) => e.event)).toEqual(['login_failed', 'pin_set', 'login_succeeded', 'login_failed']);
    expect(await historyCount('203')).toBe(0);
  });

  it('audits pin_set for a first code set without the initial flag (e.g. by an admin)', async () => {
    const mailbox = await newMailbox();
    expect(await service.changeAccessCode('demo.local', mailbox, code('7204'), { ...cli, channel: 'admin' })).toEqual({ result: 'ok' });
    expect((await audit(mailbox)).map((e) => [e.event, e.channel])).toEqual([['pin_set', 'admin']]);
  });

  it('answers unavailable for a mailbox that does not exist, writing nothing', async () => {
    expect(await service.changeAccessCode('demo.local', '298', code('7205'), phone)).toEqual({ result: 'unavailable' });
    expect(await service.checkNewAccessCode('demo.local', '298', code('7205'))).toEqual({ result: 'unavailable' });
    expect(await audit('298')).toEqual([]);
  });

  it('a failure after the credential update leaves no partial change (all or nothing)', async () => {
    const mailbox = await newMailbox('8035');
    await service.changeAccessCode('demo.local', mailbox, code('8146'), phone);
    const credentialBefore = await db.query(`SELECT c.* FROM access_code_credentials c JOIN mailboxes m ON m.id = c.mailbox_id WHERE m.number = $1`, [mailbox]);
    const auditBefore = await audit(mailbox);
    // The audit row is written last, after history and credential; an invalid channel makes
    // the database refuse it (check constraint), so the transaction must undo the rest.
    const badCtx = { ...phone, channel: 'fax' as AuditChannel };
    expect(await service.changeAccessCode('demo.local', mailbox, code('8257'), badCtx)).toEqual({ result: 'unavailable' });
    expect(await db.query(`SELECT c.* FROM access_code_credentials c JOIN mailboxes m ON m.id = c.mailbox_id WHERE m.number = $1`, [mailbox]))
      .toEqual(credentialBefore);
    expect(await historyCount(mailbox)).toBe(1);
    expect(await audit(mailbox)).toEqual(auditBefore);
    expect(await service.verifyLogin('demo.local', mailbox, code('8146'), phone)).toEqual({ result: 'ok', mustChange: false });
    expect(await service.verifyLogin('demo.local', mailbox, code('8257'), phone)).toEqual({ result: 'rejected' });
  });

  it('serialises concurrent changes of one mailbox: the second sees the first', async () => {
    const mailbox = await newMailbox('9146');
    // Both requests checked the rules against 9146 before either committed; the second must
    // re-check against what the first wrote and find its code is now the current one.
    const results = await Promise.all([
      service.changeAccessCode('demo.local', mailbox, code('9257'), phone),
      service.changeAccessCode('demo.local', mailbox, code('9257'), phone),
    ]);
    expect(results).toEqual(expect.arrayContaining([{ result: 'ok' }, { result: 'rejected', reason: 'sameAsCurrent' }]));
    expect(await historyCount(mailbox)).toBe(1);

    // Two different new codes: both apply, one after the other; the loser's code is history.
    const [a, b] = await Promise.all([
      service.changeAccessCode('demo.local', mailbox, code('9368'), phone),
      service.changeAccessCode('demo.local', mailbox, code('9479'), phone),
    ]);
    expect([a, b]).toEqual([{ result: 'ok' }, { result: 'ok' }]);
    expect(await historyCount(mailbox)).toBe(3);
    const ok68 = (await service.verifyLogin('demo.local', mailbox, code('9368'), phone)).result === 'ok';
    const ok79 = (await service.verifyLogin('demo.local', mailbox, code('9479'), phone)).result === 'ok';
    expect(ok68 !== ok79).toBe(true);
    expect(await service.checkNewAccessCode('demo.local', mailbox, ok68 ? '9479' : '9368'))
      .toEqual({ result: 'rejected', reason: 'recentlyUsed' });
    expect((await audit(mailbox)).filter((e) => e.event === 'pin_changed')).toHaveLength(3);
  });

  it('no audit field and no log line carries an access code or any of its digits', async () => {
    const all = [...await listAuditEvents(db, { domain: 'demo.local' }), ...await listAuditEvents(db, { domain: 'nowhere.example' })];
    expect(all.length).toBeGreaterThan(20);
    const knownMailboxes = new Set((await db.query<{ number: string }>('SELECT number FROM mailboxes')).map((r) => r.number));
    knownMailboxes.add('299').add('298');
    for (const e of all) {
      // Fields a code could leak into hold no digit at all; `mailbox` is only ever a mailbox
      // number, and `at` only the time.
      for (const field of [e.domain, e.event, e.channel, e.actor, e.callId ?? '']) expect(field).not.toMatch(/[0-9]/);
      expect(knownMailboxes.has(e.mailbox), e.mailbox).toBe(true);
      expect(Object.keys(e).sort()).toEqual(['actor', 'at', 'callId', 'channel', 'domain', 'event', 'mailbox']);
    }
    const rawAudit = JSON.stringify(await db.query('SELECT * FROM audit_events'));
    // Log lines, without the fields that are numbers by nature (time, pid).
    const logs = logLines.map((l) => JSON.stringify({ ...JSON.parse(l), time: 0, pid: 0 })).join('\n');
    expect(logLines.length).toBeGreaterThan(0);
    expect(CODES_USED.size).toBeGreaterThan(30);
    for (const c of CODES_USED) {
      expect(logs).not.toContain(c);
      expect(rawAudit.replace(/"at":"[^"]*"/g, '')).not.toContain(c);
    }
  });
});
