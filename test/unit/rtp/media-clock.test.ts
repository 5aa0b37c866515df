import { describe, expect, it } from 'vitest';
import { MediaClock, type MediaClockClient } from '../../../src/telephony/embedded/rtp/index.js';
import { FakeMediaTime } from './helpers.js';

class RecordingClient implements MediaClockClient {
  readonly ticks: { at: number; slots: number }[] = [];
  constructor(private readonly time: FakeMediaTime, private readonly onTick?: () => void) {}
  onMediaTick(slots: number): void {
    this.ticks.push({ at: this.time.now(), slots });
    this.onTick?.();
  }
}

function setup() {
  const time = new FakeMediaTime();
  const clock = new MediaClock({ time });
  return { time, clock };
}

describe('MediaClock', () => {
  it('does not run without clients', () => {
    const { time, clock } = setup();
    expect(time.pendingTimers).toBe(0);
    expect(clock.stats()).toMatchObject({ running: false, clients: 0, ticks: 0 });
  });

  it('ticks every 20 ms against absolute deadlines from the start', () => {
    const { time, clock } = setup();
    const start = time.now();
    const client = new RecordingClient(time);
    clock.add(client);
    expect(time.nextDue()).toBe(start + 20);
    for (let i = 0; i < 5; i++) time.fire();
    expect(client.ticks).toEqual([20, 40, 60, 80, 100].map((offset) => ({ at: start + offset, slots: 1 })));
    expect(clock.stats()).toMatchObject({ ticks: 5, lateTicks: 0, maxLatenessMs: 0, skippedSlots: 0 });
  });

  it('does not drift when every wakeup is a little late: the next deadline stays on the grid', () => {
    const { time, clock } = setup();
    const start = time.now();
    const client = new RecordingClient(time);
    clock.add(client);
    for (let i = 0; i < 500; i++) time.fire(3);
    // A setTimeout(20) chain would now be 500 × 3 ms = 1.5 s behind.
    expect(client.ticks.at(-1)!.at).toBe(start + 500 * 20 + 3);
    expect(client.ticks.every((tick) => tick.slots === 1)).toBe(true);
    expect(time.nextDue()).toBe(start + 501 * 20);
    expect(clock.stats()).toMatchObject({ ticks: 500, lateTicks: 0, maxLatenessMs: 3, skippedSlots: 0 });
  });

  it('a late wakeup skips missed slots instead of bursting them, and reports how many elapsed', () => {
    const { time, clock } = setup();
    const start = time.now();
    const client = new RecordingClient(time);
    clock.add(client);
    time.fire(); // slot 1 on time
    time.fire(47); // slot 2 due at +40, woke at +87: slots 2, 3 and 4 have passed
    expect(client.ticks).toHaveLength(2);
    expect(client.ticks[1]).toEqual({ at: start + 87, slots: 3 });
    // Next deadline is slot 5 (+100), not 20 ms after the late tick and not a catch-up burst.
    expect(time.nextDue()).toBe(start + 100);
    time.fire();
    expect(client.ticks[2]).toEqual({ at: start + 100, slots: 1 });
    expect(clock.stats()).toMatchObject({ ticks: 3, lateTicks: 1, maxLatenessMs: 47, skippedSlots: 2 });
  });

  it('counts lateness above 5 ms as a late tick, not below', () => {
    const { time, clock } = setup();
    clock.add(new RecordingClient(time));
    time.fire(5);
    time.fire(5.5);
    time.fire(1);
    expect(clock.stats()).toMatchObject({ ticks: 3, lateTicks: 1, maxLatenessMs: 5.5 });
  });

  it('re-arms without ticking when the timer fires before the deadline', () => {
    const { time, clock } = setup();
    const start = time.now();
    const client = new RecordingClient(time);
    clock.add(client);
    time.fire(-0.5); // the platform timer woke 0.5 ms early
    expect(client.ticks).toHaveLength(0);
    expect(time.nextDue()).toBe(start + 20.5); // ceil(0.5 ms)
    time.fire();
    expect(client.ticks).toEqual([{ at: start + 20.5, slots: 1 }]);
  });

  it('one clock serves all clients with one timer', () => {
    const { time, clock } = setup();
    const a = new RecordingClient(time);
    const b = new RecordingClient(time);
    clock.add(a);
    time.fire();
    clock.add(b);
    expect(time.pendingTimers).toBe(1);
    time.fire();
    time.fire();
    expect(a.ticks).toHaveLength(3);
    expect(b.ticks).toHaveLength(2);
    expect(b.ticks.map((tick) => tick.at)).toEqual(a.ticks.slice(1).map((tick) => tick.at));
  });

  it('stops when the last client leaves and restarts on a fresh grid', () => {
    const { time, clock } = setup();
    const client = new RecordingClient(time);
    clock.add(client);
    time.fire();
    clock.remove(client);
    expect(time.pendingTimers).toBe(0);
    expect(clock.stats()).toMatchObject({ running: false, clients: 0, ticks: 1 });
    time.advance(1234.5);
    const restart = time.now();
    clock.add(client);
    expect(time.nextDue()).toBe(restart + 20);
    time.fire();
    expect(client.ticks.at(-1)).toEqual({ at: restart + 20, slots: 1 });
  });

  it('a client removed by another client during a tick is not ticked afterwards', () => {
    const { time, clock } = setup();
    const victim = new RecordingClient(time);
    const remover = new RecordingClient(time, () => clock.remove(victim));
    clock.add(remover);
    clock.add(victim);
    time.fire();
    expect(remover.ticks).toHaveLength(1);
    expect(victim.ticks).toHaveLength(0);
    expect(clock.has(victim)).toBe(false);
  });

  it('a client removing itself as the last one stops the clock from inside the tick', () => {
    const { time, clock } = setup();
    const client: RecordingClient = new RecordingClient(time, () => clock.remove(client));
    clock.add(client);
    time.fire();
    expect(time.pendingTimers).toBe(0);
    expect(clock.stats().running).toBe(false);
  });

  it('a throwing client does not stop the others or the clock', () => {
    const { time, clock } = setup();
    const broken = new RecordingClient(time, () => {
      throw new Error('boom');
    });
    const healthy = new RecordingClient(time);
    clock.add(broken);
    clock.add(healthy);
    time.fire();
    time.fire();
    expect(healthy.ticks).toHaveLength(2);
    expect(clock.stats()).toMatchObject({ ticks: 2, clientErrors: 2, running: true });
    clock.remove(broken);
    clock.remove(healthy);
  });

  it('runs on the real monotonic clock by default', async () => {
    const clock = new MediaClock();
    let ticks = 0;
    const done = new Promise<void>((resolve) => {
      const client: MediaClockClient = {
        onMediaTick(slots) {
          expect(slots).toBeGreaterThanOrEqual(1);
          if (++ticks === 3) {
            clock.remove(client);
            resolve();
          }
        },
      };
      clock.add(client);
    });
    await done;
    expect(clock.stats()).toMatchObject({ ticks: 3, running: false });
  });
});
