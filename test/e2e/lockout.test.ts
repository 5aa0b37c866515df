/**
 * The failed-login lockout end to end (issue 4, CONTRACT "Failed logins"), with real sipp calls
 * against a whole vmaccess server: eleven wrong logins on 204 across four calls lock it — the
 * tenth failure locks it (audit `mailbox_locked`), and then even the right code is refused — and
 * `vmaccess unlock` frees it. The unlock goes the way the CLI goes while a server runs: the
 * runtime file in DATA_DIR names the server's admin endpoint, which the CLI's RemoteAdmin calls
 * (test/integration/guard/unlock-cli.test.ts runs the CLI binary itself).
 *
 * In-process counters always; Redis counters too when REDIS_URL is set (as in CI), under a key
 * prefix of this test's own so parallel runs on the same Redis do not meet.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RemoteAdmin } from '../../src/admin/admin.js';
import { runtimeFilePath, type ServerRuntimeInfo } from '../../src/runtime/server-runtime.js';
import { listAuditEvents } from '../../src/store/audit.js';
import { runSipp, sippAvailable, sippReport, type SippOptions } from '../support/sipp.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const haveSipp = sippAvailable();

type Counters = 'in-process' | 'redis';
const variants: Counters[] = process.env.REDIS_URL ? ['in-process', 'redis'] : ['in-process'];

for (const counters of variants) {
  describe.skipIf(!haveSipp)(`lockout across calls, unlock [pglite, ${counters} counters]`, () => {
    let t: TestServer;
    const keyPrefix = `vmaccess-e2e-${randomBytes(4).toString('hex')}:`;

    async function call(scenario: string, over: Partial<SippOptions> = {}): Promise<string> {
      const run = await runSipp(scenario, {
        target: t.sipTarget, service: '*97', caller: '204', domain: 'demo.local', messageTrace: true, ...over,
      });
      expect(run.exitCode, `${scenario}: ${sippReport(run)}`).toBe(0);
      expect(run.callId, 'Call-ID in the trace').not.toBeNull();
      return run.callId!;
    }
    async function eventsOf(callId: string | null): Promise<string[]> {
      return (await listAuditEvents(t.server.core.db, { domain: 'demo.local', mailbox: '204' }))
        .filter((r) => r.callId === callId)
        .map((r) => r.event);
    }

    beforeAll(async () => {
      t = await startTestServer('pglite', counters === 'redis'
        ? { REDIS_URL: process.env.REDIS_URL!, REDIS_KEY_PREFIX: keyPrefix }
        : {});
      expect((t.server.core.guard as { kind: string }).kind).toBe(counters === 'redis' ? 'redis' : 'memory');
    });
    afterAll(async () => {
      await t?.stop();
      if (counters === 'redis') {
        const redis = new Redis(process.env.REDIS_URL!, { lazyConnect: true, maxRetriesPerRequest: 1 });
        try {
          await redis.connect();
          const keys = await redis.keys(`${keyPrefix}*`);
          if (keys.length > 0) await redis.del(...keys);
        } finally {
          redis.disconnect();
        }
      }
    });

    it('eleven wrong logins on 204 across calls lock it, the right code is refused, vmaccess unlock frees it', async () => {
      // Nine failures in three calls at once (three tries each, then goodbye): not locked yet.
      const first = await Promise.all([1, 2, 3].map(() => call('login-wrong-code-three-times.xml')));
      for (const id of first) expect(await eventsOf(id)).toEqual(['login_failed', 'login_failed', 'login_failed']);
      // The tenth failure locks 204; the eleventh is refused; so is the right code, 5150.
      const locking = await call('lockout-wrong-wrong-right.xml');
      expect(await eventsOf(locking)).toEqual(['login_failed', 'mailbox_locked', 'login_failed', 'login_failed']);
      const lockedRow = (await listAuditEvents(t.server.core.db, { domain: 'demo.local', mailbox: '204' }))
        .find((r) => r.event === 'mailbox_locked');
      expect(lockedRow).toMatchObject({ channel: 'phone', actor: '204@demo.local', callId: locking });

      // Unlock as `vmaccess unlock --domain demo.local --mailbox 204` does while a server runs
      // (findRunningServer would skip a server in its own process: read the file directly).
      const running = JSON.parse(await readFile(runtimeFilePath(t.config.dataDir), 'utf8')) as ServerRuntimeInfo;
      expect(running.pid).toBe(process.pid);
      const admin = new RemoteAdmin(running.adminUrl, running.adminToken);
      expect(await admin.unlock({ domain: 'demo.local', mailbox: '204', actor: 'cli:e2e' })).toEqual({ wasLocked: true });
      const unlocked = (await listAuditEvents(t.server.core.db, { domain: 'demo.local', mailbox: '204' })).at(-1);
      expect(unlocked).toMatchObject({ event: 'mailbox_unlocked', channel: 'cli', actor: 'cli:e2e', callId: null });

      const login = await call('login-5150-goodbye.xml');
      expect(await eventsOf(login)).toEqual(['login_succeeded']);
    }, 120_000);
  });
}
