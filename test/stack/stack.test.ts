/**
 * `npm run test:stack`: the sipp scenarios of test/stack/steps.ts, in order, against
 *
 * - SIP_TARGET=host:port — an external vmaccess, e.g. the docker compose stack (drachtio-server +
 *   FreeSWITCH) with a freshly seeded demo tenant. Its TRUSTED_SIP_PEERS must contain this
 *   machine's address (STACK_LOCAL_ADDRESS, default: the address routed towards the target).
 *   Optional: STACK_DATABASE_URL (audit rows checked, must_change set), STACK_VMACCESS_CLI
 *   (`vmaccess` command on the target for unlock), STACK_UNTRUSTED_ADDRESS, STACK_ANSWER_DELAY=1.
 * - nothing set — a vmaccess started here on the embedded engine (demo tenant, PGlite), where
 *   every step runs and every audit row is checked. This is how `npm test` keeps the stack check
 *   itself honest.
 */
import { execSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RemoteAdmin } from '../../src/admin/admin.js';
import { silentLogger } from '../../src/log.js';
import { runtimeFilePath, type ServerRuntimeInfo } from '../../src/runtime/server-runtime.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { localAddressToward } from '../../src/telephony/embedded/local-address.js';
import { runSipp, sippAvailable, sippReport } from '../support/sipp.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { STACK_STEPS, type StackNeed, type StackStep } from './steps.js';

const external = process.env.SIP_TARGET;
const haveSipp = sippAvailable();

interface Target {
  sipTarget: string;
  localAddress: string;
  untrustedAddress: string | undefined;
  db: Database | null;
  unlock: ((domain: string, mailbox: string) => Promise<void>) | null;
  ringing: boolean;
  /** Store writes (must_change) need the store, not only a read-only look. */
  canWrite: boolean;
}

function unmet(step: StackStep, target: Target): StackNeed[] {
  return (step.needs ?? []).filter((need) => {
    switch (need) {
      case 'untrusted': return target.untrustedAddress === undefined;
      case 'store': return !target.canWrite;
      case 'admin': return target.unlock === null;
      case 'ringing': return !target.ringing;
    }
  });
}

describe.skipIf(!haveSipp)(`stack check against ${external ?? 'a local embedded vmaccess'}`, () => {
  let local: TestServer | null = null;
  let target: Target;

  beforeAll(async () => {
    if (external !== undefined) {
      const [host = ''] = external.split(':');
      const db = process.env.STACK_DATABASE_URL !== undefined
        ? await openDatabase({ databaseUrl: process.env.STACK_DATABASE_URL, dataDir: ':memory:', logger: silentLogger })
        : null;
      const cli = process.env.STACK_VMACCESS_CLI;
      target = {
        sipTarget: external,
        localAddress: process.env.STACK_LOCAL_ADDRESS ?? await localAddressToward(host),
        untrustedAddress: process.env.STACK_UNTRUSTED_ADDRESS,
        db,
        canWrite: db !== null,
        ringing: process.env.STACK_ANSWER_DELAY === '1',
        unlock: cli === undefined ? null : async (domain, mailbox) => {
          execSync(`${cli} unlock --domain ${domain} --mailbox ${mailbox}`, { stdio: 'inherit' });
        },
      };
      return;
    }
    // 127.0.0.2 is not trusted here; a short ring lets CANCEL arrive before the answer.
    local = await startTestServer('pglite', { TRUSTED_SIP_PEERS: '127.0.0.1/32', ANSWER_DELAY_MS: '300' });
    const t = local;
    target = {
      sipTarget: t.sipTarget,
      localAddress: '127.0.0.1',
      untrustedAddress: '127.0.0.2',
      db: t.server.core.db,
      canWrite: true,
      ringing: true,
      unlock: async (domain, mailbox) => {
        const running = JSON.parse(await readFile(runtimeFilePath(t.config.dataDir), 'utf8')) as ServerRuntimeInfo;
        await new RemoteAdmin(running.adminUrl, running.adminToken).unlock({ domain, mailbox, actor: 'cli:stack' });
      },
    };
  }, 60_000);
  afterAll(async () => {
    if (local !== null) await local.stop();
    else await target?.db?.close();
  });

  for (const step of STACK_STEPS) {
    it(step.name, async (ctx) => {
      const missing = unmet(step, target);
      if (missing.length > 0) {
        console.log(`stack step skipped (${step.name}): needs ${missing.join(', ')}`);
        ctx.skip();
        return;
      }
      const domain = step.domain ?? 'demo.local';
      if (step.before !== undefined && 'mustChange' in step.before) {
        await target.db!.query(
          `UPDATE access_code_credentials SET must_change = true WHERE mailbox_id = (
             SELECT m.id FROM mailboxes m JOIN domains d ON d.id = m.domain_id WHERE d.name = $1 AND m.number = $2)`,
          [domain, step.before.mustChange]);
      }
      if (step.before !== undefined && 'unlock' in step.before) await target.unlock!(domain, step.before.unlock);

      const running = runSipp(step.scenario, {
        target: target.sipTarget,
        service: step.service,
        caller: step.caller,
        domain,
        localAddress: step.untrusted === true ? target.untrustedAddress! : target.localAddress,
        transport: step.transport ?? 'u1',
        ...(step.keys !== undefined ? { keys: step.keys } : {}),
        messageTrace: true,
      });
      let beside: Awaited<ReturnType<typeof runSipp>> | null = null;
      if (step.alongside !== undefined) {
        const { scenario, service, caller, afterMs = 2000 } = step.alongside;
        await new Promise((r) => setTimeout(r, afterMs));
        beside = await runSipp(scenario, { target: target.sipTarget, service, caller, domain, localAddress: target.localAddress, messageTrace: true });
      }
      const run = await running;
      if (beside !== null) expect(beside.exitCode, `${step.alongside!.scenario}: ${sippReport(beside)}`).toBe(0);
      expect(run.exitCode, `${step.scenario}: ${sippReport(run)}`).toBe(0);
      if (target.db !== null && step.messages !== undefined) {
        const [mailbox, count] = step.messages;
        const rows = await target.db.query<{ n: string }>(
          `SELECT count(*) AS n FROM messages msg JOIN mailboxes m ON m.id = msg.mailbox_id JOIN domains d ON d.id = m.domain_id
            WHERE d.name = $1 AND m.number = $2`, [domain, mailbox]);
        expect(Number(rows[0]?.n)).toBe(count);
      }
      if (target.db !== null && step.audit !== undefined && run.callId !== null) {
        const rows = await target.db.query<{ mailbox: string; event: string }>(
          'SELECT mailbox, event FROM audit_events WHERE call_id = $1 ORDER BY id', [run.callId]);
        expect(rows.map((r) => [r.mailbox, r.event])).toEqual(step.audit);
      }
    }, 90_000);
  }
});
