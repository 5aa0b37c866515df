/**
 * `vmaccess` command line. Exit codes (CONTRACT): 0 success, 1 runtime failure, 2 bad usage.
 * Every error is one line on stderr.
 */
import { userInfo } from 'node:os';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../config.js';
import { createLogger } from '../log.js';
import { openCore } from '../app.js';
import { AdminRequestError, LocalAdmin, RemoteAdmin, type AdminOperations } from '../admin/admin.js';
import { findRunningServer } from '../runtime/server-runtime.js';
import type { AuditEvent } from '../store/audit.js';
import { runServer } from '../server.js';
import type { Role } from '../domain/permissions.js';

const HELP = `vmaccess — voicemail access server for hosted-PBX operators

Usage:
  vmaccess serve [--demo]                          run the server (SIGTERM/SIGINT: drain calls, exit 0)
  vmaccess migrate                                 apply SQL migrations and exit
  vmaccess demo                                    seed the demo tenant and exit (idempotent)
  vmaccess audit --domain D [--mailbox M] [--json] [--all]
                                                   print audit events, oldest first: the six phone
                                                   events of the contract; --all adds the portal's
                                                   and the account changes' (domain '*': operators)
  vmaccess unlock --domain D --mailbox M           clear a failed-login lockout (audited)
  vmaccess user create --domain D --extension E --name "N" --role R [--site S] [--password-stdin]
                                                   a user with a personal mailbox (and a portal password)
  vmaccess user passwd --domain D --extension E    set a user's portal password (read from stdin)
  vmaccess operator set --name N                   create an operator (all domains) / set its password (stdin)
  vmaccess token create --operator N [--label L]   print a new API token for the operator (shown once)
  vmaccess token revoke --operator N (--label L | --token-stdin)
                                                   revoke the operator's tokens with that label, or
                                                   the token read from stdin; they get 401 at once
  vmaccess --help                                  this text

Account changes are audited (channel cli, actor cli:<your login name>), never a password.
Passwords are read from the first line of standard input, e.g.
  printf '%s\n' 'a-long-password' | vmaccess user passwd --domain demo.local --extension 201

Configuration comes from environment variables (SIP_ADDRESS, SIP_PORT, DATABASE_URL, DATA_DIR,
REDIS_URL, PIN_PEPPER, TRUSTED_SIP_PEERS, DEFAULT_DOMAIN, LOG_LEVEL, ...); see README.md.
Exit codes: 0 success, 1 runtime failure, 2 bad usage.
`;

/** Bad command-line usage: exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

function parse(args: string[], options: ParseArgsConfig['options']): ReturnType<typeof parseArgs> {
  try {
    return parseArgs({ args, options, allowPositionals: false, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0] ?? 'bad arguments');
  }
}

function fail(message: string): void {
  process.stderr.write(`vmaccess: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
}

/** The admin operations for this data directory: through the running server if there is one. */
async function withAdmin<T>(config: Config, fn: (admin: AdminOperations) => Promise<T>, opts = { migrateFirst: true }): Promise<T> {
  const server = await findRunningServer(config.dataDir);
  if (server !== null) return fn(new RemoteAdmin(server.adminUrl, server.adminToken));
  const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, process.stderr);
  // Every command but `migrate` itself needs the schema, so it is brought up to date first.
  const core = await openCore(config, logger, { migrate: opts.migrateFirst });
  try {
    return await fn(new LocalAdmin(core));
  } finally {
    await core.close();
  }
}

/** Who runs this command, for the audit trail: `cli:<the operator's login name>`. */
function cliActor(): string {
  let user: string;
  try {
    user = userInfo().username || 'unknown';
  } catch {
    user = process.env.USER ?? 'unknown';
  }
  return `cli:${user}`;
}

/** The first line of standard input (a password or token piped in); never echoed, never logged. */
async function readPassword(what = 'password'): Promise<string> {
  if (process.stdin.isTTY) throw new UsageError(`pipe the ${what} on standard input, e.g. printf '%s\\n' "$SECRET" | vmaccess …`);
  let data = '';
  for await (const chunk of process.stdin) {
    data += String(chunk);
    if (data.includes('\n') || data.length > 1000) break;
  }
  const password = data.split(/\r?\n/)[0] ?? '';
  if (password === '') throw new UsageError(`no ${what} on standard input`);
  return password;
}

function formatAuditLine(e: AuditEvent): string {
  return [e.at, e.domain, e.mailbox, e.event, e.channel, e.actor, e.callId ?? '-'].join('  ');
}

async function dispatch(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP);
    return command === undefined ? 2 : 0;
  }
  switch (command) {
    case 'serve': {
      const { values } = parse(rest, { demo: { type: 'boolean', default: false } });
      const config = loadConfig(process.env, { demo: values.demo === true });
      return runServer(config, { demo: values.demo === true });
    }
    case 'migrate': {
      parse(rest, {});
      const config = loadConfig(process.env);
      const applied = await withAdmin(config, (admin) => admin.migrate(), { migrateFirst: false });
      process.stdout.write(applied.length === 0 ? 'migrations: up to date\n' : `migrations applied: ${applied.join(', ')}\n`);
      return 0;
    }
    case 'demo': {
      parse(rest, {});
      const config = loadConfig(process.env, { demo: true });
      const result = await withAdmin(config, (admin) => admin.seedDemo());
      process.stdout.write(result.inserted === 0
        ? 'demo tenant: already present, nothing changed\n'
        : `demo tenant: seeded (${result.inserted} rows)\n`);
      return 0;
    }
    case 'audit': {
      const { values } = parse(rest, {
        domain: { type: 'string' }, mailbox: { type: 'string' }, json: { type: 'boolean', default: false }, all: { type: 'boolean', default: false },
      });
      const domain = values.domain;
      if (typeof domain !== 'string' || domain === '') throw new UsageError('audit needs --domain D');
      const mailbox = typeof values.mailbox === 'string' ? values.mailbox : undefined;
      const config = loadConfig(process.env);
      // By default only the CONTRACT's six events, which external tools validate the output against.
      const events = await withAdmin(config, (admin) => admin.audit({ domain, mailbox, all: values.all === true }));
      const out = events.map((e) => (values.json === true
        ? JSON.stringify({ at: e.at, domain: e.domain, mailbox: e.mailbox, event: e.event, channel: e.channel, actor: e.actor, callId: e.callId })
        : formatAuditLine(e)));
      if (out.length > 0) process.stdout.write(out.join('\n') + '\n');
      return 0;
    }
    case 'unlock': {
      const { values } = parse(rest, { domain: { type: 'string' }, mailbox: { type: 'string' } });
      const domain = typeof values.domain === 'string' ? values.domain.trim() : '';
      const mailbox = typeof values.mailbox === 'string' ? values.mailbox.trim() : '';
      if (domain === '' || mailbox === '') throw new UsageError('unlock needs --domain D --mailbox M');
      const config = loadConfig(process.env);
      // Through the running server when there is one: in-process counters live only there.
      const { wasLocked } = await withAdmin(config, (admin) => admin.unlock({ domain, mailbox, actor: cliActor() }));
      process.stdout.write(wasLocked
        ? `${domain.toLowerCase()} ${mailbox}: unlocked (it was locked)\n`
        : `${domain.toLowerCase()} ${mailbox}: was not locked (failed-login count cleared)\n`);
      return 0;
    }
    case 'user': {
      const [sub, ...args] = rest;
      if (sub === 'create') {
        const { values } = parse(args, {
          domain: { type: 'string' }, extension: { type: 'string' }, name: { type: 'string' }, role: { type: 'string' },
          site: { type: 'string' }, 'password-stdin': { type: 'boolean', default: false },
        });
        const need = (k: string): string => {
          const v = values[k];
          if (typeof v !== 'string' || v.trim() === '') throw new UsageError(`user create needs --${k}`);
          return v.trim();
        };
        const user = {
          domain: need('domain'), extension: need('extension'), displayName: need('name'), role: need('role') as Role,
          site: typeof values.site === 'string' ? values.site : undefined,
          password: values['password-stdin'] === true ? await readPassword() : undefined,
          actor: cliActor(),
        };
        const config = loadConfig(process.env);
        await withAdmin(config, (admin) => admin.createUser(user));
        process.stdout.write(`user ${user.extension}@${user.domain.toLowerCase()} created with a mailbox${user.password !== undefined ? ' and a portal password' : ''}\n`);
        return 0;
      }
      if (sub === 'passwd') {
        const { values } = parse(args, { domain: { type: 'string' }, extension: { type: 'string' } });
        if (typeof values.domain !== 'string' || typeof values.extension !== 'string') throw new UsageError('user passwd needs --domain D --extension E');
        const request = { domain: values.domain, extension: values.extension, password: await readPassword(), actor: cliActor() };
        await withAdmin(loadConfig(process.env), (admin) => admin.setUserPassword(request));
        process.stdout.write(`portal password of ${request.extension}@${request.domain.toLowerCase()} set; their sessions are ended\n`);
        return 0;
      }
      throw new UsageError('user needs create or passwd (try vmaccess --help)');
    }
    case 'operator': {
      const [sub, ...args] = rest;
      if (sub !== 'set') throw new UsageError('operator needs set (try vmaccess --help)');
      const { values } = parse(args, { name: { type: 'string' } });
      if (typeof values.name !== 'string' || values.name === '') throw new UsageError('operator set needs --name N');
      const request = { name: values.name, password: await readPassword(), actor: cliActor() };
      await withAdmin(loadConfig(process.env), (admin) => admin.setOperator(request));
      process.stdout.write(`operator ${request.name} set\n`);
      return 0;
    }
    case 'token': {
      const [sub, ...args] = rest;
      if (sub === 'create') {
        const { values } = parse(args, { operator: { type: 'string' }, label: { type: 'string' } });
        if (typeof values.operator !== 'string' || values.operator === '') throw new UsageError('token create needs --operator N');
        const request = { operator: values.operator, label: typeof values.label === 'string' ? values.label : 'cli', actor: cliActor() };
        const { token } = await withAdmin(loadConfig(process.env), (admin) => admin.createToken(request));
        process.stdout.write(`${token}\n`);
        return 0;
      }
      if (sub === 'revoke') {
        const { values } = parse(args, { operator: { type: 'string' }, label: { type: 'string' }, 'token-stdin': { type: 'boolean', default: false } });
        if (typeof values.operator !== 'string' || values.operator === '') throw new UsageError('token revoke needs --operator N');
        const byLabel = typeof values.label === 'string' && values.label !== '';
        if (byLabel === (values['token-stdin'] === true)) throw new UsageError('token revoke needs either --label L or --token-stdin');
        const request = {
          operator: values.operator, actor: cliActor(),
          ...(byLabel ? { label: values.label as string } : { token: await readPassword('token') }),
        };
        const { revoked } = await withAdmin(loadConfig(process.env), (admin) => admin.revokeToken(request));
        process.stdout.write(`${revoked} ${revoked === 1 ? 'token' : 'tokens'} of operator ${request.operator} revoked\n`);
        return 0;
      }
      throw new UsageError('token needs create or revoke (try vmaccess --help)');
    }
    default:
      throw new UsageError(`unknown command '${command}' (try vmaccess --help)`);
  }
}

export async function main(argv: string[]): Promise<number> {
  try {
    return await dispatch(argv);
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      fail(err.message);
      return 2;
    }
    if (err instanceof AdminRequestError) {
      fail(err.message);
      return err.status === 400 ? 2 : 1;
    }
    fail(err instanceof Error ? err.message : String(err));
    return 1;
  }
}
