import { describe, expect, it } from 'vitest';
import {
  DEFAULT_LOCKOUT_POLICY, failedLoginSource, type LoginAttempt, type LoginGuard, type LoginVerdict,
} from '../../../src/guard/login-guard.js';
import { describeEachGuard, TestClock } from './guard-variants.js';

const MINUTE = 60_000;
const NOTHING: LoginVerdict = { admitted: false, mailboxLocked: false, sourceBlocked: false };
const ADMITTED: LoginVerdict = { admitted: true, mailboxLocked: false, sourceBlocked: false };

/** The same behaviour for both implementations: CONTRACT "Failed logins" and README "Lockout". */
describeEachGuard('login guard', (factory) => {
  let n = 0;
  /** A mailbox (and source) no other test touches. */
  const fresh = (source?: string): LoginAttempt => ({ domain: 'demo.local', mailbox: String(7000 + n++), source });
  const fail = (g: LoginGuard, a: LoginAttempt): Promise<LoginVerdict> => g.recordAttempt(a, false);
  const failTimes = async (g: LoginGuard, a: LoginAttempt, times: number): Promise<LoginVerdict[]> => {
    const out: LoginVerdict[] = [];
    for (let i = 0; i < times; i++) out.push(await fail(g, a));
    return out;
  };

  it('admits a matching code and refuses a wrong one', async () => {
    const g = factory.make();
    const a = fresh();
    expect(await g.recordAttempt(a, true)).toEqual(ADMITTED);
    expect(await fail(g, a)).toEqual(NOTHING);
  });

  it('locks a mailbox on the 10th failure, reports it once, and then refuses even the right code', async () => {
    const clock = new TestClock();
    const g = factory.make({ now: clock.now });
    const a = fresh();
    const first9 = await failTimes(g, a, 9);
    expect(first9.every((v) => v.mailboxLocked === false)).toBe(true);
    expect(await g.recordAttempt(a, true)).toEqual(ADMITTED);

    // An admitted login cleared the count: 9 more do not lock, the 10th does.
    expect((await failTimes(g, a, 9)).some((v) => v.mailboxLocked)).toBe(false);
    expect(await fail(g, a)).toEqual({ admitted: false, mailboxLocked: true, sourceBlocked: false });
    expect(await g.recordAttempt(a, true)).toEqual(NOTHING);
    expect(await fail(g, a)).toEqual(NOTHING);
    clock.advance(29 * MINUTE);
    expect(await g.recordAttempt(a, true)).toEqual(NOTHING);
  });

  it('isLocked tells a locked mailbox from an open one, without counting anything', async () => {
    const clock = new TestClock();
    const g = factory.make({ now: clock.now });
    const a = fresh();
    expect(await g.isLocked(a.domain, a.mailbox)).toBe(false);
    await failTimes(g, a, 9);
    expect(await g.isLocked(a.domain, a.mailbox)).toBe(false);
    await fail(g, a);
    expect(await g.isLocked(a.domain.toUpperCase(), a.mailbox)).toBe(true);
    expect(await g.isLocked(a.domain, a.mailbox)).toBe(true);
    clock.advance(30 * MINUTE + 1);
    expect(await g.isLocked(a.domain, a.mailbox)).toBe(false);
    await failTimes(g, a, 10);
    expect((await g.unlock(a.domain, a.mailbox)).wasLocked).toBe(true);
    expect(await g.isLocked(a.domain, a.mailbox)).toBe(false);
  });

  it('lifts the lock after 30 minutes and starts counting afresh', async () => {
    const clock = new TestClock();
    const g = factory.make({ now: clock.now });
    const a = fresh();
    expect((await failTimes(g, a, 10)).at(-1)?.mailboxLocked).toBe(true);
    clock.advance(30 * MINUTE + 1);
    // The failures that led to the lock are gone with it: 9 more do not lock again.
    expect((await failTimes(g, a, 9)).some((v) => v.mailboxLocked)).toBe(false);
    expect(await g.recordAttempt(a, true)).toEqual(ADMITTED);
  });

  it('counts failures in a sliding 30-minute window', async () => {
    const clock = new TestClock();
    const g = factory.make({ now: clock.now });
    const spread = fresh();
    await failTimes(g, spread, 5);
    clock.advance(20 * MINUTE);
    expect((await failTimes(g, spread, 5)).at(-1)?.mailboxLocked).toBe(true);

    const slow = fresh();
    await failTimes(g, slow, 9);
    clock.advance(30 * MINUTE + 1);
    // The 9 old failures fell out of the window: 9 new ones are still not 10 within 30 minutes.
    expect((await failTimes(g, slow, 9)).some((v) => v.mailboxLocked)).toBe(false);
    clock.advance(10 * MINUTE);
    expect((await fail(g, slow)).mailboxLocked).toBe(true);
  });

  it('keys a mailbox by domain (case-insensitive) and number as typed', async () => {
    const g = factory.make();
    const a = fresh();
    await failTimes(g, a, 9);
    expect((await fail(g, { ...a, domain: 'DEMO.Local' })).mailboxLocked).toBe(true);
    expect(await g.recordAttempt({ ...a, domain: 'other.local' }, true)).toEqual(ADMITTED);
    expect(await g.recordAttempt({ ...a, mailbox: `0${a.mailbox}` }, true)).toEqual(ADMITTED);
    expect(await g.recordAttempt(a, true)).toEqual(NOTHING);
  });

  it('unlock clears the lock and the count, and says whether there was a lock', async () => {
    const g = factory.make();
    const a = fresh();
    await failTimes(g, a, 10);
    expect(await g.unlock('Demo.Local', a.mailbox)).toEqual({ wasLocked: true });
    expect(await g.recordAttempt(a, true)).toEqual(ADMITTED);
    expect(await g.unlock('demo.local', a.mailbox)).toEqual({ wasLocked: false });

    const b = fresh();
    await failTimes(g, b, 9);
    expect(await g.unlock('demo.local', b.mailbox)).toEqual({ wasLocked: false });
    expect((await failTimes(g, b, 9)).some((v) => v.mailboxLocked)).toBe(false);
    expect(await g.unlock('nowhere.example', '1')).toEqual({ wasLocked: false });
  });

  it('blocks a source after 20 failures within 10 minutes across mailboxes, for 10 minutes', async () => {
    const clock = new TestClock();
    const g = factory.make({ now: clock.now });
    const source = `address:192.0.2.${n++ % 250}`;
    const verdicts: LoginVerdict[] = [];
    for (let i = 0; i < 20; i++) verdicts.push(await fail(g, fresh(source)));
    expect(verdicts.slice(0, 19).some((v) => v.sourceBlocked)).toBe(false);
    expect(verdicts[19]).toEqual({ admitted: false, mailboxLocked: false, sourceBlocked: true });

    const victim = fresh(source);
    expect(await g.recordAttempt(victim, true)).toEqual(NOTHING);
    expect(await g.recordAttempt({ ...victim, source: 'address:198.51.100.7' }, true)).toEqual(ADMITTED);
    expect(await g.recordAttempt({ ...victim, source: undefined }, true)).toEqual(ADMITTED);
    clock.advance(10 * MINUTE + 1);
    expect(await g.recordAttempt(victim, true)).toEqual(ADMITTED);
  });

  it('does not clear a source count on a good login (no interleaving one\'s own mailbox)', async () => {
    const g = factory.make();
    const source = `address:203.0.113.${n++ % 250}`;
    for (let i = 0; i < 19; i++) await fail(g, fresh(source));
    expect(await g.recordAttempt(fresh(source), true)).toEqual(ADMITTED);
    expect((await fail(g, fresh(source))).sourceBlocked).toBe(true);
  });

  it('a right code from a blocked source neither clears nor counts for the mailbox; a wrong one counts', async () => {
    const g = factory.make();
    const blocked = `address:198.18.0.${n++ % 250}`;
    for (let i = 0; i < 20; i++) await fail(g, fresh(blocked));
    const a = fresh();
    await failTimes(g, a, 8);
    expect(await g.recordAttempt({ ...a, source: blocked }, true)).toEqual(NOTHING);
    expect(await fail(g, { ...a, source: blocked })).toEqual(NOTHING); // the 9th failure on the mailbox
    expect((await fail(g, a)).mailboxLocked).toBe(true);
  });
});

describe('failedLoginSource', () => {
  it('counts untrusted peers by network address and trusted peers by asserted identity', () => {
    expect(failedLoginSource({ trusted: false, actor: 'unverified:x@y via 192.0.2.1' }, '::ffff:192.0.2.1')).toBe('address:192.0.2.1');
    expect(failedLoginSource({ trusted: true, actor: '201@demo.local' }, '127.0.0.1')).toBe('asserted:201@demo.local');
  });

  it('has the documented numbers', () => {
    expect(DEFAULT_LOCKOUT_POLICY).toEqual({
      mailbox: { maxFailures: 10, windowMs: 30 * MINUTE, lockMs: 30 * MINUTE },
      source: { maxFailures: 20, windowMs: 10 * MINUTE, lockMs: 10 * MINUTE },
    });
  });
});
