/**
 * Picks the guard for a configuration: Redis when REDIS_URL is set (shared by every server on
 * that Redis), otherwise in-process counters (CONTRACT "Configuration").
 */
import type { Logger } from '../log.js';
import type { LoginGuard } from './login-guard.js';
import { MemoryLoginGuard } from './memory-login-guard.js';
import { RedisLoginGuard } from './redis-login-guard.js';

export function createLoginGuard(
  config: { readonly redisUrl: string | undefined; readonly redisKeyPrefix?: string | undefined },
  logger: Logger,
): LoginGuard {
  if (config.redisUrl === undefined) return new MemoryLoginGuard();
  return new RedisLoginGuard({
    url: config.redisUrl,
    ...(config.redisKeyPrefix !== undefined ? { keyPrefix: config.redisKeyPrefix } : {}),
    logger,
  });
}
