/**
 * Reading a test server's /metrics (Prometheus text format 0.0.4) in tests: one sample line,
 * e.g. `vmaccess_logins_total{outcome="succeeded"}`, by its exact series (name and labels).
 */
import type { TestServer } from './test-server.js';

/** The value of one sample line of the Prometheus text; undefined when there is no such line. */
export function findSample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** The value of one sample line of the Prometheus text; throws when there is no such line. */
export function sample(text: string, series: string): number {
  const value = findSample(text, series);
  if (value === undefined) throw new Error(`no ${series} in /metrics`);
  return value;
}

/** The text of the server's /metrics. */
export async function fetchMetrics(t: TestServer): Promise<string> {
  return (await fetch(`http://127.0.0.1:${t.server.http.port}/metrics`)).text();
}

/** One sample of the server's /metrics, e.g. `vmaccess_store_errors_total`; throws when it is missing. */
export async function metric(t: TestServer, series: string): Promise<number> {
  return sample(await fetchMetrics(t), series);
}
