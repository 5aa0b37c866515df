/**
 * One shared 20 ms send clock for every call's RTP.
 *
 * Why shared: a timer per call multiplies wakeups by the number of calls and lets each call
 * drift on its own. Why absolute deadlines: a `setTimeout(20)` chain accumulates the lateness
 * of every wakeup (event-loop work, timer granularity) and drifts by seconds per minute, which a
 * receiver's jitter buffer hears as underruns. Here tick n is due at start + n × 20 ms on a
 * monotonic clock; each timer is armed for the next deadline, whatever time it is now.
 *
 * A late wakeup (GC pause, busy loop) that misses whole slots does not burst the missed packets
 * — that would flood the receiver's jitter buffer — it skips them, and tells clients how many
 * slots elapsed so they advance the RTP timestamp by 160 × slots (RFC 3550 §5.1: the timestamp
 * reflects the sampling instant, so a gap in time is a gap in timestamps).
 */
import type { Logger } from '../../../log.js';
import { FRAME_MS } from './g711.js';

export interface MediaClockClient {
  /**
   * Called once per tick. `slots` is how many 20 ms slots elapsed since the previous tick
   * (1 when on time, more after a late wakeup). A client added since the last tick gets the
   * same number; it should treat its first tick as its first packet.
   */
  onMediaTick(slots: number): void;
}

/** The clock's view of time; injectable so pacing arithmetic is tested without real time. */
export interface MediaTimeSource {
  /** Monotonic milliseconds (fractional allowed), e.g. performance.now(). */
  now(): number;
  setTimer(callback: () => void, delayMs: number): unknown;
  clearTimer(handle: unknown): void;
}

export const systemMediaTimeSource: MediaTimeSource = {
  now: () => performance.now(),
  setTimer: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export interface MediaClockStats {
  /** Ticks run (each sends at most one packet per client). */
  ticks: number;
  /** Ticks that ran more than `lateThresholdMs` (default 5 ms) after their deadline. */
  lateTicks: number;
  /** Worst lateness seen, in ms. */
  maxLatenessMs: number;
  /** Slots skipped because a wakeup came a whole period or more late. */
  skippedSlots: number;
  /** Client callbacks that threw (logged; other clients still ran). */
  clientErrors: number;
  clients: number;
  running: boolean;
}

export interface MediaClockOptions {
  time?: MediaTimeSource;
  logger?: Logger;
  /** Lateness counted as a late tick; default 5 ms. */
  lateThresholdMs?: number;
}

export class MediaClock {
  readonly periodMs = FRAME_MS;
  private readonly time: MediaTimeSource;
  private readonly logger: Logger | undefined;
  private readonly lateThresholdMs: number;
  private readonly clients = new Set<MediaClockClient>();
  private timer: unknown = null;
  private running = false;
  /** Monotonic time of slot 0 of the current run. */
  private startedAt = 0;
  /** The slot index of the last tick run. */
  private lastSlot = 0;
  private ticks = 0;
  private lateTicks = 0;
  private maxLatenessMs = 0;
  private skippedSlots = 0;
  private clientErrors = 0;

  constructor(options: MediaClockOptions = {}) {
    this.time = options.time ?? systemMediaTimeSource;
    this.logger = options.logger;
    this.lateThresholdMs = options.lateThresholdMs ?? 5;
  }

  /** Adds a client; starts the clock if it was idle. The client's first tick comes within 20 ms. */
  add(client: MediaClockClient): void {
    this.clients.add(client);
    if (!this.running) this.startRun();
  }

  /** Removes a client; stops the clock when none is left. Safe to call from inside a tick. */
  remove(client: MediaClockClient): void {
    this.clients.delete(client);
    if (this.clients.size === 0 && this.running) this.stopRun();
  }

  has(client: MediaClockClient): boolean {
    return this.clients.has(client);
  }

  stats(): MediaClockStats {
    return {
      ticks: this.ticks,
      lateTicks: this.lateTicks,
      maxLatenessMs: this.maxLatenessMs,
      skippedSlots: this.skippedSlots,
      clientErrors: this.clientErrors,
      clients: this.clients.size,
      running: this.running,
    };
  }

  private startRun(): void {
    this.running = true;
    this.startedAt = this.time.now();
    this.lastSlot = 0;
    this.arm(this.startedAt);
  }

  private stopRun(): void {
    this.running = false;
    if (this.timer !== null) this.time.clearTimer(this.timer);
    this.timer = null;
  }

  /** Arms the timer for the deadline of slot lastSlot + 1. */
  private arm(now: number): void {
    const deadline = this.startedAt + (this.lastSlot + 1) * this.periodMs;
    // Timers have 1 ms granularity; rounding up avoids waking just before the deadline.
    const delay = Math.max(0, Math.ceil(deadline - now));
    this.timer = this.time.setTimer(this.onTimer, delay);
  }

  private readonly onTimer = (): void => {
    this.timer = null;
    if (!this.running) return;
    const now = this.time.now();
    const dueSlot = Math.floor((now - this.startedAt) / this.periodMs);
    if (dueSlot <= this.lastSlot) {
      // Woke before the deadline (timer and monotonic clock disagree by a fraction of a ms).
      this.arm(now);
      return;
    }
    const nextDeadline = this.startedAt + (this.lastSlot + 1) * this.periodMs;
    const latenessMs = now - nextDeadline;
    const slots = dueSlot - this.lastSlot;
    this.lastSlot = dueSlot;
    this.ticks++;
    if (latenessMs > this.lateThresholdMs) this.lateTicks++;
    if (latenessMs > this.maxLatenessMs) this.maxLatenessMs = latenessMs;
    this.skippedSlots += slots - 1;

    // Set iteration skips clients removed during the loop, so a call closed by another
    // call's callback is not ticked after close.
    for (const client of this.clients) {
      try {
        client.onMediaTick(slots);
      } catch (error) {
        // One broken call must not silence every other call on the clock.
        this.clientErrors++;
        this.logger?.error({ err: error }, 'media clock client failed');
      }
    }
    if (this.running && this.timer === null) this.arm(this.time.now());
  };
}
