/**
 * Prometheus metrics (prom-client), served at GET /metrics. One registry per server, so several
 * servers in one process (the tests) never share counters. Names follow Prometheus conventions:
 * `vmaccess_` prefix, `_total` for counters, base units.
 *
 * No label ever carries a digit a caller typed, a mailbox number or a domain: outcomes and
 * methods only (bounded cardinality, nothing to leak).
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { isStoreErrorCounted } from '../store/errors.js';
import type { DigitMethod } from '../telephony/call-control.js';

export type CallOutcome = 'ended_by_server' | 'ended_by_caller' | 'cancelled';
export type LoginOutcome = 'succeeded' | 'failed' | 'refused_locked' | 'unavailable';

/** Live numbers the engine reports at scrape time (gauges and counters it keeps itself). */
export interface MediaStatsSource {
  activeCalls(): number;
  rtpPacketsSent(): number;
  /** Media clock ticks that ran more than 5 ms after their deadline. */
  rtpLateTicks(): number;
  /** 20 ms slots skipped because a wakeup came a whole period late (packets never sent). */
  rtpSkippedSlots(): number;
  /** Live message-waiting (message-summary) subscriptions; engines without MWI leave it out. */
  mwiSubscriptions?(): number;
}

/**
 * Counts a failed routing (the router throws only when the store cannot be reached) as a store
 * error — unless the error is marked as counted already (markStoreErrorCounted): the router marks
 * the one it makes up when the access-code service answered 'unavailable', because that service
 * counted the failed request, and it is one failure.
 */
export function countRoutingFailure(metrics: Metrics | undefined, err: unknown): void {
  if (isStoreErrorCounted(err)) return;
  metrics?.storeErrors.inc();
}

export class Metrics {
  readonly registry = new Registry();
  readonly calls: Counter<'outcome'>;
  readonly invitesRejected: Counter<'status'>;
  readonly logins: Counter<'outcome'>;
  readonly lockouts: Counter;
  readonly dtmf: Counter<'method'>;
  readonly dtmfDropped: Counter;
  readonly storeErrors: Counter;
  readonly redisErrors: Counter;
  #media: MediaStatsSource | null = null;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.calls = new Counter({ name: 'vmaccess_calls_total', help: 'Answered calls that ended, by how they ended', labelNames: ['outcome'], registers });
    this.invitesRejected = new Counter({ name: 'vmaccess_invites_rejected_total', help: 'INVITEs answered with a final error response, by status code', labelNames: ['status'], registers });
    this.logins = new Counter({ name: 'vmaccess_logins_total', help: 'Mailbox logins by outcome', labelNames: ['outcome'], registers });
    this.lockouts = new Counter({ name: 'vmaccess_lockouts_total', help: 'Mailboxes locked after too many failed logins', registers });
    this.dtmf = new Counter({ name: 'vmaccess_dtmf_total', help: 'Keys received, by how they arrived', labelNames: ['method'], registers });
    this.dtmfDropped = new Counter({ name: 'vmaccess_dtmf_dropped_total', help: 'Keys dropped by the per-call key rate limit', registers });
    this.storeErrors = new Counter({ name: 'vmaccess_store_errors_total', help: 'Store (Postgres/PGlite) requests that failed', registers });
    this.redisErrors = new Counter({ name: 'vmaccess_redis_errors_total', help: 'Logins refused because the shared failed-login counters (Redis) were unreachable', registers });
    const media = (): MediaStatsSource | null => this.#media;
    new Gauge({
      name: 'vmaccess_active_calls', help: 'Calls in progress', registers,
      collect() { this.set(media()?.activeCalls() ?? 0); },
    });
    new Gauge({
      name: 'vmaccess_mwi_subscriptions', help: 'Live message-waiting (message-summary) subscriptions', registers,
      collect() { this.set(media()?.mwiSubscriptions?.() ?? 0); },
    });
    new Counter({
      name: 'vmaccess_rtp_packets_sent_total', help: 'RTP packets sent (embedded engine)', registers,
      collect() { this.reset(); this.inc(media()?.rtpPacketsSent() ?? 0); },
    });
    new Counter({
      name: 'vmaccess_rtp_late_ticks_total', help: 'Media clock ticks more than 5 ms late (embedded engine)', registers,
      collect() { this.reset(); this.inc(media()?.rtpLateTicks() ?? 0); },
    });
    new Counter({
      name: 'vmaccess_rtp_skipped_slots_total', help: '20 ms RTP slots skipped after a late wakeup (embedded engine)', registers,
      collect() { this.reset(); this.inc(media()?.rtpSkippedSlots() ?? 0); },
    });
    for (const method of ['rfc4733', 'info', 'inband'] satisfies DigitMethod[]) this.dtmf.inc({ method }, 0);
    for (const outcome of ['succeeded', 'failed', 'refused_locked', 'unavailable'] satisfies LoginOutcome[]) this.logins.inc({ outcome }, 0);
    for (const outcome of ['ended_by_server', 'ended_by_caller', 'cancelled'] satisfies CallOutcome[]) this.calls.inc({ outcome }, 0);
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'vmaccess_' });
  }

  /** The engine that carries the calls reports its live numbers through this. */
  setMediaSource(source: MediaStatsSource): void {
    this.#media = source;
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
