import type { HealthCheck } from '../http/http-server.js';

/** A SIP/media engine (embedded or drachtio): takes calls and runs an IVR session for each. */
export interface CallEngine {
  start(): Promise<void>;
  /** Stops taking new calls (503 + Retry-After), lets active calls finish for up to `graceMs`, then hangs up the rest. */
  drain(graceMs: number): Promise<void>;
  /** Releases sockets and connections. */
  close(): Promise<void>;
  /** What /healthz should check besides the store. */
  health(): HealthCheck[];
  /** Where it listens, for the startup log line. */
  describe(): Record<string, unknown>;
  readonly activeCalls: number;
}
