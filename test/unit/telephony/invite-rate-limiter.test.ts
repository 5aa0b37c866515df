import { describe, expect, it } from 'vitest';
import { InviteRateLimiter } from '../../../src/telephony/invite-rate-limiter.js';

describe('InviteRateLimiter (per-source token bucket)', () => {
  it('allows the burst, then the rate; each source has its own bucket', () => {
    let now = 0;
    const limiter = new InviteRateLimiter({ ratePerS: 2, burst: 3, now: () => now });
    expect([1, 2, 3, 4].map(() => limiter.allow('192.0.2.1'))).toEqual([true, true, true, false]);
    expect(limiter.allow('192.0.2.2')).toBe(true);
    expect(limiter.retryAfterS('192.0.2.1')).toBe(1);
    now += 499;
    expect(limiter.allow('192.0.2.1')).toBe(false);
    now += 1;
    expect(limiter.allow('192.0.2.1')).toBe(true); // 0.5 s × 2/s = one token
    now += 60_000;
    expect([1, 2, 3, 4].map(() => limiter.allow('192.0.2.1'))).toEqual([true, true, true, false]); // never more than the burst
  });

  it('a rate of 0 means no limit', () => {
    const limiter = new InviteRateLimiter({ ratePerS: 0, burst: 1 });
    expect(Array.from({ length: 100 }, () => limiter.allow('x')).every(Boolean)).toBe(true);
  });

  it('stays bounded under a spoofed-source flood: idle sources go first, then the oldest', () => {
    let now = 0;
    const limiter = new InviteRateLimiter({ ratePerS: 1, burst: 2, maxSources: 100, now: () => now });
    for (let i = 0; i < 10_000; i++) {
      limiter.allow(`10.0.${i >> 8}.${i & 255}`);
      now += 1;
    }
    expect(limiter.size).toBeLessThanOrEqual(100);
    // A busy source keeps its (empty) bucket while the table churns.
    const busy = new InviteRateLimiter({ ratePerS: 1, burst: 1, maxSources: 2, now: () => now });
    expect(busy.allow('a')).toBe(true);
    expect(busy.allow('a')).toBe(false);
    expect(busy.allow('b')).toBe(true);
    expect(busy.allow('a')).toBe(false);
  });
});
