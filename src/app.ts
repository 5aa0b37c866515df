/**
 * The pieces every command shares — store, pepper, hasher, access-code service — opened once
 * from a validated config. Engines and the HTTP endpoint are added by the server on top.
 */
import type { Config } from './config.js';
import type { Logger } from './log.js';
import { AccessCodeHasher } from './domain/access-code-hasher.js';
import { loadPepper } from './domain/pepper.js';
import { createLoginGuard } from './guard/create-login-guard.js';
import type { LoginGuard } from './guard/login-guard.js';
import { AccessCodeService } from './mailbox/access-code-service.js';
import { Metrics } from './metrics/metrics.js';
import { createPasswordHasher } from './domain/password-hasher.js';
import { DatabaseAudioStore, FileAudioStore, type AudioStore } from './messages/audio-store.js';
import { LocalChangeBus, PostgresChangeBus } from './messages/mailbox-changes.js';
import { MessageService } from './messages/message-service.js';
import { join } from 'node:path';
import { openDatabase, type Database } from './store/database.js';
import { migrate } from './store/migrate.js';

export interface Core {
  readonly config: Config;
  readonly logger: Logger;
  readonly db: Database;
  readonly hasher: AccessCodeHasher;
  readonly accessCodes: AccessCodeService;
  /** Failed-login counters and locks: Redis with REDIS_URL, else in this process. */
  readonly guard: LoginGuard;
  /** Prometheus metrics of this server (GET /metrics). */
  readonly metrics: Metrics;
  /** Hashes portal and operator web passwords (a pepper of its own, derived from PIN_PEPPER). */
  readonly passwords: AccessCodeHasher;
  /** Message audio, greetings and names: files in DATA_DIR/messages, or the database (MESSAGE_AUDIO_STORE). */
  readonly audio: AudioStore;
  /**
   * DATA_DIR/messages: the file store's folder, and with either kind the place of recordings in
   * progress (incoming/) and FreeSWITCH's playback copies (playback/); swept at start.
   */
  readonly audioDir: string;
  /** Voicemail messages: deposit, list, save, delete; announces count changes (MWI). */
  readonly messages: MessageService;
  close(): Promise<void>;
}

export async function openCore(config: Config, logger: Logger, opts: { migrate: boolean }): Promise<Core> {
  const pepper = await loadPepper({ env: config.pinPepper, databaseUrl: config.databaseUrl, dataDir: config.dataDir, logger });
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, logger });
  try {
    if (opts.migrate) {
      const applied = await migrate(db, logger);
      if (applied.length > 0) logger.info({ applied }, 'migrations applied');
    }
  } catch (err) {
    await db.close();
    throw err;
  }
  const hasher = new AccessCodeHasher(pepper);
  const guard = createLoginGuard(config, logger);
  const metrics = new Metrics();
  const accessCodes = new AccessCodeService({ db, hasher, logger, guard, metrics });
  const passwords = createPasswordHasher(pepper);
  const audioDir = join(config.dataDir, 'messages');
  const audio: AudioStore = config.messageAudioStore === 'database' ? new DatabaseAudioStore(db) : new FileAudioStore(audioDir);
  // Several servers can share Postgres (and the lamps their phones subscribe to); PGlite has one.
  const changes = config.databaseUrl !== undefined ? new PostgresChangeBus({ databaseUrl: config.databaseUrl, logger }) : new LocalChangeBus();
  const messages = new MessageService({ db, audio, logger, changes });
  return {
    config, logger, db, hasher, accessCodes, guard, metrics, passwords, audio, audioDir, messages,
    close: async () => {
      await messages.close();
      await guard.close();
      await db.close();
    },
  };
}
