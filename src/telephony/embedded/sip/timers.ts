/**
 * RFC 3261 §17 / Table 4 timer values. T1 is the round-trip estimate, T2 the cap on
 * retransmission intervals for non-INVITE requests and INVITE responses, T4 the time a message
 * may stay in the network.
 */
export interface SipTimers {
  T1: number;
  T2: number;
  T4: number;
}

export const DEFAULT_TIMERS: Readonly<SipTimers> = { T1: 500, T2: 4000, T4: 5000 };

export function resolveTimers(overrides: Partial<SipTimers> = {}): SipTimers {
  const timers = { ...DEFAULT_TIMERS, ...overrides };
  for (const [name, value] of Object.entries(timers)) {
    if (!Number.isFinite(value) || value <= 0) throw new RangeError(`SIP timer ${name} must be a positive number of ms`);
  }
  if (timers.T2 < timers.T1) throw new RangeError('SIP timer T2 must not be smaller than T1');
  return timers;
}

/** 64*T1: Timers B, F, H, J (UDP) and L, and the UAS wait for an ACK (§13.3.1.4). */
export function sixtyFourT1(timers: SipTimers): number {
  return 64 * timers.T1;
}
