/**
 * A fixed-resolution latency histogram (0.1 ms buckets up to `maxMs`, one overflow bucket), so
 * millions of samples cost a few kilobytes and percentiles are exact to the bucket width.
 */
export class Histogram {
  readonly #counts: Uint32Array;
  readonly #resolution: number;
  #n = 0;
  #max = 0;
  #sum = 0;

  constructor(readonly maxMs = 2000, resolutionMs = 0.1) {
    this.#resolution = resolutionMs;
    this.#counts = new Uint32Array(Math.ceil(maxMs / resolutionMs) + 2);
  }

  add(ms: number): void {
    const i = Math.min(this.#counts.length - 1, Math.max(0, Math.round(ms / this.#resolution)));
    this.#counts[i]! += 1;
    this.#n += 1;
    this.#sum += ms;
    if (ms > this.#max) this.#max = ms;
  }

  get count(): number {
    return this.#n;
  }

  get max(): number {
    return this.#max;
  }

  get mean(): number {
    return this.#n === 0 ? 0 : this.#sum / this.#n;
  }

  /** The smallest value v with at least p·n samples ≤ v (p in 0..1). */
  percentile(p: number): number {
    if (this.#n === 0) return 0;
    const rank = Math.ceil(p * this.#n);
    let seen = 0;
    for (let i = 0; i < this.#counts.length; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return i === this.#counts.length - 1 ? this.#max : i * this.#resolution;
    }
    return this.#max;
  }

  merge(other: Histogram): void {
    if (other.#counts.length !== this.#counts.length) throw new Error('histograms of different shapes');
    for (let i = 0; i < this.#counts.length; i++) this.#counts[i]! += other.#counts[i]!;
    this.#n += other.#n;
    this.#sum += other.#sum;
    this.#max = Math.max(this.#max, other.#max);
  }
}
