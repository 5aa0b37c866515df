/**
 * The lockout as the IVR meets it: AccessCodeService.verifyLogin with a real store and each
 * guard (in-process; Redis when REDIS_URL is set), across several "calls" (call contexts).
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, silentLogger } from '../../../src/log.js';
import { AccessCodeHasher } from '../../../src/domain/access-code-hasher.js';
import type { LoginGuard } from '../../../src/guard/login-guard.js';
import { RedisLoginGuard } from '../../../src/guard/redis-login-guard.js';
import { AccessCodeService, type CallContext } from '../../../src/mailbox/access-code-service.js';
import { listAuditEvents, type AuditEvent } from '../../../src/store/audit.js';
import type { Database } from '../../../src/store/database.js';
import { seedDemo } from '../../../src/store/demo.js';
import { describeEachDatabase, TEST_PEPPER, withTestDatabase, type TestDatabase } from '../store/helpers.js';
import { describeEachGuard, TestClock } from '../../unit/guard/guard-variants.js';
import { containsNumber } from '../../support/secrets.js';

const MINUTE = 60_000;
const cli: CallContext = { channel: 'cli', actor: 'operator', callId: null };
/**
 * The context of call number `n`. Each call comes from its own source unless one is given, so
 * only the test about the per-source limit meets it (the Redis counters outlive a test).
 */
const call = (n: number, loginSource = `address:192.0.2.${n}`): CallContext =>
  ({ channel: 'phone', actor: 'sip:mallory@example.net', callId: `call-${n}`, loginSource });

/** Counts argon2 verifies, to show a locked mailbox still costs one. */
class CountingHasher extends AccessCodeHasher {
  verifies = 0;
  override verify(hash: string | null, accessCode: string): Promise<boolean> {
    this.verifies++;
    return super.verify(hash, accessCode);
  }
}

let nextMailbox = 600;

describeEachDatabase('lockout through the access-code service', (dbVariant) => {
  let t: TestDatabase;
  let db: Database;
  const hasher = new CountingHasher(TEST_PEPPER);
  const logLines: string[] = [];
  const logger = createLogger('trace', new Writable({ write(chunk, _e, cb) { logLines.push(String(chunk)); cb(); } }));

  /** A fresh personal mailbox in demo.local with `accessCode` set. */
  async function newMailbox(accessCode: string): Promise<string> {
    const number = String(nextMailbox++);
    await db.transaction(async (tx) => {
      const [domain] = await tx.query<{ id: number }>(`SELECT id FROM domains WHERE name = 'demo.local'`);
      const [user] = await tx.query<{ id: number }>(
        `INSERT INTO users (domain_id, extension, display_name, role) VALUES ($1, $2, 'Test User', 'basic') RETURNING id`,
        [domain?.id, number]);
      await tx.query(`INSERT INTO mailboxes (domain_id, number, owner_user_id) VALUES ($1, $2, $3)`, [domain?.id, number, user?.id]);
    });
    const setup = new AccessCodeService({ db, hasher, logger: silentLogger });
    expect(await setup.changeAccessCode('demo.local', number, accessCode, cli)).toEqual({ result: 'ok' });
    return number;
  }
  const audit = (mailbox: string): Promise<AuditEvent[]> => listAuditEvents(db, { domain: 'demo.local', mailbox });
  const events = async (mailbox: string): Promise<string[]> => (await audit(mailbox)).map((e) => e.event);

  beforeAll(async () => {
    t = await withTestDatabase(dbVariant);
    db = t.db;
    await seedDemo(db, hasher);
  });
  afterAll(async () => { await t?.cleanup(); });

  describeEachGuard('guard', (factory) => {
    const service = (guard: LoginGuard): AccessCodeService => new AccessCodeService({ db, hasher, logger, guard });

    it('locks after 10 failed logins across calls, refuses the right code like a wrong one, audits mailbox_locked once', async () => {
      const s = service(factory.make());
      const mailbox = await newMailbox('5150');
      // Calls 1–3: three wrong codes each (the IVR hangs up after 3); call 4: the 10th locks.
      for (let n = 1; n <= 3; n++) {
        for (let i = 0; i < 3; i++) expect(await s.verifyLogin('demo.local', mailbox, '1111', call(n))).toEqual({ result: 'rejected' });
      }
      expect(await events(mailbox)).toEqual(['pin_set', ...Array(9).fill('login_failed')]);
      expect(await s.verifyLogin('demo.local', mailbox, '2222', call(4))).toEqual({ result: 'rejected' });
      const locked = (await audit(mailbox)).slice(10);
      expect(locked.map((e) => [e.event, e.channel, e.actor, e.callId])).toEqual([
        ['login_failed', 'phone', 'sip:mallory@example.net', 'call-4'],
        ['mailbox_locked', 'phone', 'sip:mallory@example.net', 'call-4'],
      ]);

      // Locked: the right code gets exactly what a wrong code gets, after the same argon2 verify.
      const before = hasher.verifies;
      expect(await s.verifyLogin('demo.local', mailbox, '5150', call(5))).toEqual({ result: 'rejected' });
      expect(hasher.verifies).toBe(before + 1);
      expect(await s.verifyLogin('demo.local', mailbox, '3333', call(5))).toEqual({ result: 'rejected' });
      expect((await events(mailbox)).slice(12)).toEqual(['login_failed', 'login_failed']);
      expect((await events(mailbox)).filter((e) => e === 'mailbox_locked')).toHaveLength(1);
    });

    it('lets the right code in again when the 30 minutes are over', async () => {
      const clock = new TestClock();
      const s = service(factory.make({ now: clock.now }));
      const mailbox = await newMailbox('7391');
      for (let i = 0; i < 10; i++) await s.verifyLogin('demo.local', mailbox, '1111', call(10 + Math.floor(i / 3)));
      clock.advance(29 * MINUTE);
      expect(await s.verifyLogin('demo.local', mailbox, '7391', call(20))).toEqual({ result: 'rejected' });
      clock.advance(MINUTE + 1);
      expect(await s.verifyLogin('demo.local', mailbox, '7391', call(21))).toEqual({ result: 'ok', mustChange: false });
      expect((await events(mailbox)).at(-1)).toBe('login_succeeded');
    });

    it('counts and locks a nonexistent mailbox exactly like a real one', async () => {
      const s = service(factory.make());
      const ghost = String(nextMailbox++);
      for (let i = 0; i < 10; i++) expect(await s.verifyLogin('demo.local', ghost, '1111', call(30))).toEqual({ result: 'rejected' });
      expect(await events(ghost)).toEqual([...Array(10).fill('login_failed'), 'mailbox_locked']);
    });

    it('unlockMailbox clears the lock and the count and audits mailbox_unlocked (channel cli)', async () => {
      const guard = factory.make();
      const s = service(guard);
      const mailbox = await newMailbox('4826');
      for (let i = 0; i < 10; i++) await s.verifyLogin('demo.local', mailbox, '1111', call(40));
      const operator: CallContext = { channel: 'cli', actor: 'cli:operator', callId: null };
      expect(await s.unlockMailbox('DEMO.local', mailbox, operator)).toEqual({ wasLocked: true });
      expect((await audit(mailbox)).at(-1)).toMatchObject({
        domain: 'demo.local', mailbox, event: 'mailbox_unlocked', channel: 'cli', actor: 'cli:operator', callId: null,
      });
      expect(await s.verifyLogin('demo.local', mailbox, '4826', call(41))).toEqual({ result: 'ok', mustChange: false });
      expect(await s.unlockMailbox('demo.local', mailbox, operator)).toEqual({ wasLocked: false });
      expect((await events(mailbox)).slice(-2)).toEqual(['login_succeeded', 'mailbox_unlocked']);
    });

    it('blocks one source walking through mailboxes, without locking them, and lets other sources in', async () => {
      const s = service(factory.make());
      const from = logLines.length;
      const walker = `address:203.0.113.${nextMailbox % 250}`;
      const mailboxes: string[] = [];
      for (let i = 0; i < 7; i++) mailboxes.push(String(nextMailbox++));
      // 7 mailboxes × 3 guesses: the 20th failure blocks the source.
      for (const m of mailboxes) {
        for (let i = 0; i < 3; i++) await s.verifyLogin('demo.local', m, '1111', call(50, walker));
      }
      const victim = await newMailbox('6042');
      expect(await s.verifyLogin('demo.local', victim, '6042', call(51, walker))).toEqual({ result: 'rejected' });
      expect(await s.verifyLogin('demo.local', victim, '6042', call(52, `address:198.51.100.${nextMailbox % 250}`))).toEqual({ result: 'ok', mustChange: false });
      for (const m of mailboxes) expect(await events(m)).not.toContain('mailbox_locked');
      const warning = logLines.slice(from).map((l) => JSON.parse(l) as { msg: string; source?: string })
        .find((l) => l.msg.startsWith('failed-login limit reached: logins from this source'));
      expect(warning?.source).toBe(walker);
    });
  });

  describe('with the shared counters unreachable', () => {
    const guard = new RedisLoginGuard({ url: 'redis://127.0.0.1:1', logger: silentLogger, connectTimeoutMs: 200 });
    afterAll(() => guard.close());

    it('fails closed: "unavailable", a wrong code still audited, no success audited, one error logged without digits', async () => {
      const s = new AccessCodeService({ db, hasher, logger, guard });
      const mailbox = await newMailbox('2580');
      const from = logLines.length;
      expect(await s.verifyLogin('demo.local', mailbox, '2580', call(60))).toEqual({ result: 'unavailable' });
      expect(await s.verifyLogin('demo.local', mailbox, '1111', call(60))).toEqual({ result: 'unavailable' });
      expect(await events(mailbox)).toEqual(['pin_set', 'login_failed']);
      const lines = logLines.slice(from);
      const errors = lines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level >= 50);
      expect(errors.map((e) => e.msg)).toEqual(Array(2).fill('failed-login counters unavailable: login refused (fail closed)'));
      for (const l of lines) {
        expect(containsNumber(l, mailbox), l).toBe(false);
        expect(containsNumber(l, '2580'), l).toBe(false);
      }
      await expect(s.unlockMailbox('demo.local', mailbox, cli)).rejects.toThrow(/redis/);
    });
  });
});
