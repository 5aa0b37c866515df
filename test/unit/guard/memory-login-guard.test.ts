import { describe, expect, it } from 'vitest';
import { DEFAULT_LOCKOUT_POLICY } from '../../../src/guard/login-guard.js';
import { MemoryLoginGuard } from '../../../src/guard/memory-login-guard.js';
import { TestClock } from './guard-variants.js';

const MINUTE = 60_000;
const at = (mailbox: string, source?: string): { domain: string; mailbox: string; source?: string } =>
  ({ domain: 'demo.local', mailbox, ...(source !== undefined ? { source } : {}) });

describe('MemoryLoginGuard memory bound', () => {
  it('never holds more than maxEntries keys per table, however many mailboxes are tried', async () => {
    const g = new MemoryLoginGuard({ maxEntries: 50 });
    for (let i = 0; i < 1_000; i++) await g.recordAttempt(at(String(i), `address:10.0.${i >> 8}.${i & 255}`), false);
    expect(g.size).toBeLessThanOrEqual(100);
  });

  it('drops what has expired first, and keeps a live lock while anything else can go', async () => {
    const clock = new TestClock();
    const policy = { ...DEFAULT_LOCKOUT_POLICY, mailbox: { ...DEFAULT_LOCKOUT_POLICY.mailbox, lockMs: 60 * MINUTE } };
    const g = new MemoryLoginGuard({ maxEntries: 3, now: clock.now, policy });
    for (let i = 0; i < 10; i++) await g.recordAttempt(at('900'), false); // locked
    await g.recordAttempt(at('901'), false);
    await g.recordAttempt(at('902'), false);
    // Full: each new mailbox pushes out the least recently used one that is not locked.
    for (let i = 0; i < 20; i++) await g.recordAttempt(at(String(1000 + i)), false);
    expect(g.size).toBe(3);
    expect((await g.recordAttempt(at('900'), true)).admitted).toBe(false);

    // Once everything but the lock has expired, a sweep frees the room without evicting it.
    clock.advance(31 * MINUTE);
    expect((await g.recordAttempt(at('900'), true)).admitted).toBe(false);
    await g.recordAttempt(at('2000'), false);
    expect(g.size).toBe(2);
    clock.advance(29 * MINUTE + 1);
    expect((await g.recordAttempt(at('900'), true)).admitted).toBe(true);
  });

  it('forgets an idle mailbox once its failures have left the window', async () => {
    const clock = new TestClock();
    const g = new MemoryLoginGuard({ now: clock.now });
    await g.recordAttempt(at('903'), false);
    expect(g.size).toBe(1);
    clock.advance(30 * MINUTE + 1);
    expect((await g.recordAttempt(at('903'), true)).admitted).toBe(true);
    expect(g.size).toBe(0);
  });
});
