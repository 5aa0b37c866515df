/**
 * Per-source INVITE rate limit: a token bucket per network source address (burst `burst`,
 * refilled at `ratePerS`). A single phone sends an INVITE every few seconds at most; a source
 * sending tens per second is a scanner or a broken peer, and without a limit it could fill
 * MAX_CALLS by itself. Trusted peers (TRUSTED_SIP_PEERS: the operator's own PBXs and proxies,
 * which carry many callers) are not limited here — MAX_CALLS bounds them.
 *
 * The table is bounded (`maxSources`): when full, buckets that are full again (idle sources)
 * are forgotten first, so a spoofed-source flood cannot grow memory without bound.
 * Pure apart from the injectable clock; both engines use it.
 */
export interface InviteRateLimiterOptions {
  readonly ratePerS: number;
  readonly burst: number;
  readonly maxSources?: number;
  readonly now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class InviteRateLimiter {
  readonly #buckets = new Map<string, Bucket>();
  readonly #rate: number;
  readonly #burst: number;
  readonly #max: number;
  readonly #now: () => number;

  constructor(opts: InviteRateLimiterOptions) {
    this.#rate = opts.ratePerS;
    this.#burst = opts.burst;
    this.#max = opts.maxSources ?? 10_000;
    this.#now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.#buckets.size;
  }

  /** Takes one token for `source`; false when the source is over its rate (answer 503). */
  allow(source: string): boolean {
    if (this.#rate <= 0) return true;
    const now = this.#now();
    let bucket = this.#buckets.get(source);
    if (bucket === undefined) {
      if (this.#buckets.size >= this.#max) this.#evict(now);
      bucket = { tokens: this.#burst, at: now };
      this.#buckets.set(source, bucket);
    } else {
      bucket.tokens = Math.min(this.#burst, bucket.tokens + ((now - bucket.at) * this.#rate) / 1000);
      bucket.at = now;
    }
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Seconds until `source` has a token again (for Retry-After), at least 1. */
  retryAfterS(source: string): number {
    const bucket = this.#buckets.get(source);
    if (bucket === undefined || this.#rate <= 0) return 1;
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.#rate));
  }

  #evict(now: number): void {
    for (const [source, bucket] of this.#buckets) {
      if (bucket.tokens + ((now - bucket.at) * this.#rate) / 1000 >= this.#burst) this.#buckets.delete(source);
    }
    // Still full (every source busy): drop the oldest entries (Map keeps insertion order).
    for (const source of this.#buckets.keys()) {
      if (this.#buckets.size < this.#max) break;
      this.#buckets.delete(source);
    }
  }
}
