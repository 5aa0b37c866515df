/**
 * Store errors with codes callers can act on: STORE_UNAVAILABLE means "try again later" (the
 * database is unreachable, overloaded or too slow), STORE_LOCKED means another process holds
 * the embedded store. Any other error from the store is a bug or bad data and keeps its own code.
 */
export class StoreUnavailableError extends Error {
  readonly code = 'STORE_UNAVAILABLE' as const;
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'StoreUnavailableError';
  }
}

export class StoreLockedError extends Error {
  readonly code = 'STORE_LOCKED' as const;
  constructor(message: string) {
    super(message);
    this.name = 'StoreLockedError';
  }
}

export function isStoreUnavailable(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'STORE_UNAVAILABLE';
}

/** Set on an error whose store failure was already counted; a symbol, so logging the error shows no trace of it. */
const STORE_ERROR_COUNTED = Symbol('storeErrorCounted');

/**
 * Marks `err` as a store failure already counted in vmaccess_store_errors_total where it happened,
 * so that whoever handles it later does not count it again (countRoutingFailure).
 */
export function markStoreErrorCounted<E extends object>(err: E): E {
  (err as { [STORE_ERROR_COUNTED]?: true })[STORE_ERROR_COUNTED] = true;
  return err;
}

export function isStoreErrorCounted(err: unknown): boolean {
  return (err as { [STORE_ERROR_COUNTED]?: unknown } | null | undefined)?.[STORE_ERROR_COUNTED] === true;
}

/** Socket-level failures reaching the server (Node's errno codes). */
const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND',
  'EAI_AGAIN', 'EPIPE', 'ECONNABORTED',
]);

/**
 * SQLSTATEs that mean "the server cannot serve us now" rather than "the statement is wrong"
 * (PostgreSQL Appendix A): class 08 connection exceptions, class 53 insufficient resources,
 * 57014 query_canceled (statement_timeout), 57P01..57P03 shutdown / cannot connect now,
 * 55P03 lock_not_available (lock_timeout).
 */
function isUnavailableSqlState(code: string): boolean {
  return code.startsWith('08') || code.startsWith('53') || code === '57014' || code === '57P01' ||
    code === '57P02' || code === '57P03' || code === '55P03';
}

/** pg and PGlite report some connection failures only by message. */
const UNAVAILABLE_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Query read timeout',
  'connection error and is not queryable',
  'Cannot use a pool after calling end',
  'PGlite is closed',
];

export function isUnavailableError(err: unknown): boolean {
  if (err === null || typeof err !== 'object') return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (NETWORK_CODES.has(code) || (/^[0-9A-Z]{5}$/.test(code) && isUnavailableSqlState(code)))) {
    return true;
  }
  const message = (err as { message?: unknown }).message;
  if (typeof message === 'string' && UNAVAILABLE_MESSAGES.some((m) => message.includes(m))) return true;
  if (err instanceof AggregateError) return err.errors.some(isUnavailableError);
  return false;
}
