/**
 * Composition root of `vmaccess serve`: config → store → engines → HTTP, and the orderly way
 * back down on SIGTERM/SIGINT (CONTRACT: stop taking calls, let active calls finish up to 30 s,
 * exit 0).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from './config.js';
import { createLogger, type Logger } from './log.js';
import { openCore, type Core } from './app.js';
import { LocalAdmin } from './admin/admin.js';
import { HttpEndpoint } from './http/http-server.js';
import { PortalService } from './portal/portal-service.js';
import { publishServerRuntime, type PublishedRuntime } from './runtime/server-runtime.js';
import { seedDemo } from './store/demo.js';
import { createMwiBackend } from './messages/mwi-backend.js';
import { sweepMessageFolder } from './messages/orphan-sweep.js';
import { INCOMING_DIR } from './messages/audio-store.js';
import { CallRouter } from './telephony/router.js';
import type { CallEngine } from './telephony/engine.js';
import { EmbeddedEngine } from './telephony/embedded/engine.js';
import { DrachtioEngine } from './telephony/drachtio/engine.js';

export interface RunningServer {
  readonly core: Core;
  readonly engine: CallEngine;
  readonly http: { readonly address: string; readonly port: number };
  /** Drains calls (up to config.shutdownGraceMs) and closes everything. Idempotent. */
  stop(): Promise<void>;
}

export interface StartOptions {
  readonly demo?: boolean;
  readonly logger?: Logger;
}

export async function startServer(config: Config, opts: StartOptions = {}): Promise<RunningServer> {
  const logger = opts.logger ?? createLogger(config.logLevel);
  const core = await openCore(config, logger, { migrate: true });
  const cleanups: Array<() => Promise<void>> = [() => core.close()];
  const unwind = async (): Promise<void> => {
    for (const fn of cleanups.reverse()) await fn().catch((err: unknown) => logger.error({ err }, 'shutdown step failed'));
  };
  try {
    // Connects a shared (Redis) guard now rather than at the first login; when Redis is away the
    // server still starts — logins fail closed until it is back (the guard logs the outage).
    if (!(await core.guard.ping())) logger.error({ lockout: core.guard.kind }, 'failed-login counters unreachable at start: logins fail closed until they are back');
    if (opts.demo === true) {
      const { inserted } = await seedDemo(core.db, core.hasher, core.passwords);
      logger.info({ inserted }, inserted === 0 ? 'demo tenant present' : 'demo tenant seeded');
    }
    // What a crash left in the message folder: only files old enough that no server sharing the
    // folder can still be writing them or about to commit their row (messages/orphan-sweep.ts).
    await sweepMessageFolder({ db: core.db, dir: core.audioDir, logger }).catch((err: unknown) => logger.error({ err }, 'orphan sweep of message audio failed'));
    // Count changes made by other servers on the same Postgres reach this server's lamps.
    core.messages.listenToOtherServers();
    // FreeSWITCH (drachtio engine) records into incoming/ and does not create folders itself.
    await mkdir(join(core.audioDir, INCOMING_DIR), { recursive: true, mode: 0o700 });
    const router = new CallRouter({
      db: core.db,
      trustedPeers: config.trustedSipPeers,
      defaultDomain: config.defaultDomain,
      hasAccessCode: (domain, mailbox) => core.accessCodes.hasAccessCode(domain, mailbox),
    });
    const engine: CallEngine = await createEngine(config, core, router, logger);
    cleanups.push(() => engine.close());

    const http = new HttpEndpoint({
      address: config.http.address,
      port: config.http.port,
      admin: new LocalAdmin(core),
      metrics: core.metrics,
      portal: new PortalService({
        db: core.db, accessCodes: core.accessCodes, guard: core.guard, passwords: core.passwords, audio: core.audio, logger,
        messages: core.messages,
      }),
      secureCookies: config.portal.secureCookies,
      trustProxy: config.http.trustProxy,
      health: [
        { name: 'store', check: () => core.db.ping().then(() => true, () => false) },
        ...engine.health(),
      ],
      logger,
    });
    const bound = await http.listen();
    cleanups.push(() => http.close());
    const host = bound.address.includes(':') ? `[${bound.address}]` : bound.address;
    const adminHost = host === '0.0.0.0' ? '127.0.0.1' : host === '[::]' ? '[::1]' : host;
    const runtime: PublishedRuntime = await publishServerRuntime(config.dataDir, `http://${adminHost}:${bound.port}`);
    http.enableAdmin(runtime.token);
    cleanups.push(() => runtime.remove());

    await engine.start();
    logger.info({ engine: config.sipEngine, sip: engine.describe(), http: bound, store: core.db.kind, lockout: core.guard.kind }, 'vmaccess ready');

    let stopping: Promise<void> | null = null;
    return {
      core,
      engine,
      http: bound,
      stop(): Promise<void> {
        stopping ??= (async () => {
          logger.info({ activeCalls: engine.activeCalls, graceMs: config.shutdownGraceMs }, 'shutting down: no new calls');
          await engine.drain(config.shutdownGraceMs);
          await unwind();
          logger.info('vmaccess stopped');
        })();
        return stopping;
      },
    };
  } catch (err) {
    await unwind();
    throw err;
  }
}

async function createEngine(config: Config, core: Core, router: CallRouter, logger: Logger): Promise<CallEngine> {
  const mwi = createMwiBackend({ db: core.db, messages: core.messages, defaultDomain: config.defaultDomain, contacts: config.mwiContacts });
  const common = {
    config, router, accessCodes: core.accessCodes, messages: core.messages, audio: core.audio, audioDir: core.audioDir, mwi, logger, metrics: core.metrics,
  };
  if (config.sipEngine === 'drachtio') return new DrachtioEngine(common);
  return EmbeddedEngine.create(common);
}

/** `vmaccess serve`: runs until SIGTERM/SIGINT, then drains and returns the exit code. */
export async function runServer(config: Config, opts: StartOptions): Promise<number> {
  const server = await startServer(config, opts);
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      server.core.logger.info({ signal }, 'signal received');
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolve();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  await server.stop();
  return 0;
}
