import { BlockList, isIP } from 'node:net';
import { join, resolve } from 'node:path';
import type { LevelWithSilent } from 'pino';
import { promptsDir } from './paths.js';

/** A bad environment variable: the server stops at start with one line naming it (exit 2). */
export class ConfigError extends Error {
  constructor(readonly variable: string, expected: string, got: string | undefined) {
    super(`${variable}: expected ${expected}${got === undefined ? '' : `, got '${got}'`}`);
    this.name = 'ConfigError';
  }
}

export interface TrustedPeers {
  readonly cidrs: readonly string[];
  /** RFC 3325 §2.3: only peers inside the trust domain may assert the caller's identity. */
  contains(address: string): boolean;
}

export interface Config {
  readonly sipEngine: 'embedded' | 'drachtio';
  readonly sip: { readonly address: string; readonly port: number };
  readonly rtp: { readonly address: string | null; readonly portMin: number; readonly portMax: number };
  readonly http: {
    readonly address: string;
    readonly port: number;
    /** HTTP_TRUST_PROXY: reverse proxies (CIDRs) whose X-Forwarded-For names the client; empty = none. */
    readonly trustProxy: readonly string[];
  };
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly redisUrl: string | undefined;
  /** Prepended to every Redis key of the lockout counters, so several deployments can share a Redis. */
  readonly redisKeyPrefix: string;
  readonly pinPepper: string | undefined;
  readonly trustedSipPeers: TrustedPeers;
  readonly defaultDomain: string | undefined;
  readonly drachtio: { readonly host: string; readonly port: number; readonly secret: string };
  readonly freeswitch: {
    readonly host: string;
    readonly port: number;
    readonly secret: string;
    /** SIP profile drachtio-fsmrf sends its INVITEs to (FREESWITCH_PROFILE). */
    readonly profile: string;
    /** The prompt folder as FreeSWITCH sees it (FREESWITCH_PROMPTS_DIR; default PROMPTS_DIR). */
    readonly promptsDir: string;
    /**
     * The message store folder (DATA_DIR/messages) as FreeSWITCH sees it, for playing messages
     * and recording new ones (FREESWITCH_MESSAGES_DIR; default the same path: one host or a
     * shared volume mounted at the same place).
     */
    readonly messagesDir: string;
    /** Where we accept FreeSWITCH's per-call outbound ESL connections (ESL_LISTEN_ADDRESS/PORT). */
    readonly eslListen: { readonly address: string; readonly port: number };
    /** The address FreeSWITCH connects back to (ESL_ADVERTISED_ADDRESS); null → worked out. */
    readonly eslAdvertisedAddress: string | null;
  };
  readonly logLevel: LevelWithSilent;
  readonly promptsDir: string;
  /** Time between 180 Ringing and 200 OK; 0 answers at once. Lets operators give callers a ring. */
  readonly answerDelayMs: number;
  readonly ivr: { readonly noInputTimeoutMs: number; readonly interDigitTimeoutMs: number };
  /** How long active calls may go on after SIGTERM/SIGINT before they are hung up. */
  readonly shutdownGraceMs: number;
  /** Calls carried at once; further INVITEs get 503 with Retry-After (MAX_CALLS). */
  readonly maxCalls: number;
  /** INVITEs per second from one untrusted source address, and the burst allowed (INVITE_RATE_PER_SOURCE / INVITE_BURST_PER_SOURCE). */
  readonly inviteRate: { readonly perSecond: number; readonly burst: number };
  /** PORTAL_SECURE_COOKIES: mark the session cookie Secure (HTTPS in front of the portal). */
  readonly portal: { readonly secureCookies: boolean };
  /** MWI_CONTACTS: unsolicited message-waiting NOTIFY targets per `mailbox@domain`. */
  readonly mwiContacts: ReadonlyMap<string, readonly string[]>;
  /** MESSAGE_AUDIO_STORE: message audio as files under DATA_DIR/messages, or bytea in the database. */
  readonly messageAudioStore: 'file' | 'database';
}

type Env = Record<string, string | undefined>;

/** Default MAX_CALLS, sized from the capacity measured on a 2-core machine (BENCHMARKS.md). */
export const DEFAULT_MAX_CALLS = 1000;

const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function value(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function integer(env: Env, name: string, fallback: number, min: number, max: number, what?: string): number {
  const raw = value(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(name, what ?? `an integer from ${min} to ${max}`, raw);
  }
  return Number(raw);
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = value(env, name);
  if (raw === undefined) return fallback;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new ConfigError(name, 'true or false', raw);
}

function ipAddress(env: Env, name: string, fallback: string): string {
  const raw = value(env, name) ?? fallback;
  if (isIP(raw) === 0) throw new ConfigError(name, 'an IPv4 or IPv6 address', raw);
  return raw;
}

function hostName(env: Env, name: string, fallback: string): string {
  const raw = value(env, name) ?? fallback;
  if (!/^[A-Za-z0-9.\-:[\]]+$/.test(raw)) throw new ConfigError(name, 'a host name or address', raw);
  return raw;
}

function domainName(env: Env, name: string, fallback: string | undefined): string | undefined {
  const raw = value(env, name) ?? fallback;
  if (raw === undefined) return undefined;
  if (!/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(raw)) {
    throw new ConfigError(name, 'a domain name such as demo.local', raw);
  }
  return raw.toLowerCase();
}

/** Strips the IPv4-mapped prefix a dual-stack socket reports (::ffff:127.0.0.1). */
export function normaliseAddress(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped?.[1] ?? address;
}

export function parseTrustedPeers(raw: string, variable = 'TRUSTED_SIP_PEERS'): TrustedPeers {
  const list = new BlockList();
  const cidrs: string[] = [];
  for (const part of raw.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const [address = '', prefixText, extra] = part.split('/');
    const family = isIP(address);
    const maxPrefix = family === 4 ? 32 : 128;
    const prefix = prefixText === undefined ? maxPrefix : Number(prefixText);
    if (family === 0 || extra !== undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > maxPrefix
      || (prefixText !== undefined && !/^\d+$/.test(prefixText))) {
      throw new ConfigError(variable, 'a comma-separated list of CIDRs such as 127.0.0.0/8,::1', raw);
    }
    list.addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
    cidrs.push(`${address}/${prefix}`);
  }
  return {
    cidrs,
    contains(address: string): boolean {
      const a = normaliseAddress(address);
      const family = isIP(a);
      if (family === 0) return false;
      return list.check(a, family === 4 ? 'ipv4' : 'ipv6');
    },
  };
}

export interface LoadConfigOptions {
  /** `--demo`: DEFAULT_DOMAIN falls back to demo.local. */
  readonly demo?: boolean;
  /** Directory relative paths (DATA_DIR) are resolved against; defaults to process.cwd(). */
  readonly cwd?: string;
}

/**
 * MWI_CONTACTS: mailboxes whose message-waiting state is also sent, unsubscribed, to a fixed
 * contact (RFC 3842 §3: a NOTIFY without a subscription, for phones that never SUBSCRIBE):
 * `201@demo.local=sip:201@10.0.0.5:5060` pairs, comma-separated; a mailbox may appear twice.
 */
export function parseMwiContacts(raw: string | undefined): ReadonlyMap<string, readonly string[]> {
  const contacts = new Map<string, string[]>();
  if (raw === undefined) return contacts;
  for (const item of raw.split(',').map((x) => x.trim()).filter((x) => x !== '')) {
    const m = /^([A-Za-z0-9*#+._-]{1,64})@([A-Za-z0-9.-]{1,253})=(sips?:[^\s,<>"]+)$/.exec(item);
    if (m === null) throw new ConfigError('MWI_CONTACTS', 'mailbox@domain=sip:contact pairs, comma-separated', item);
    const key = `${m[1]}@${m[2]!.toLowerCase()}`;
    contacts.set(key, [...(contacts.get(key) ?? []), m[3]!]);
  }
  return contacts;
}

export function loadConfig(env: Env, options: LoadConfigOptions = {}): Config {
  const sipEngineRaw = value(env, 'SIP_ENGINE') ?? 'embedded';
  if (sipEngineRaw !== 'embedded' && sipEngineRaw !== 'drachtio') {
    throw new ConfigError('SIP_ENGINE', "'embedded' or 'drachtio'", sipEngineRaw);
  }
  const sipAddress = ipAddress(env, 'SIP_ADDRESS', '0.0.0.0');
  const sipPort = integer(env, 'SIP_PORT', 5060, 0, 65535, 'a port number from 0 to 65535');
  const rtpAddressRaw = value(env, 'RTP_ADDRESS');
  if (rtpAddressRaw !== undefined && isIP(rtpAddressRaw) === 0) {
    throw new ConfigError('RTP_ADDRESS', 'an IPv4 or IPv6 address', rtpAddressRaw);
  }
  // CONTRACT: RTP_ADDRESS defaults to SIP_ADDRESS; when that is a wildcard, null means "work it
  // out per call" (the local address the kernel routes towards the caller), 127.0.0.1 at worst.
  const rtpAddress = rtpAddressRaw ?? (sipAddress === '0.0.0.0' || sipAddress === '::' ? null : sipAddress);
  const portMin = integer(env, 'RTP_PORT_MIN', 40000, 1024, 65534, 'an even port number from 1024 to 65534');
  const portMax = integer(env, 'RTP_PORT_MAX', 49999, 1025, 65535, 'a port number from 1025 to 65535');
  if (portMin % 2 !== 0) throw new ConfigError('RTP_PORT_MIN', 'an even port number', String(portMin));
  if (portMax < portMin + 1) {
    throw new ConfigError('RTP_PORT_MAX', `a port number above RTP_PORT_MIN (${portMin})`, String(portMax));
  }
  const databaseUrl = value(env, 'DATABASE_URL');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL', 'a postgres:// connection string', '(hidden)');
  }
  const redisUrl = value(env, 'REDIS_URL');
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    throw new ConfigError('REDIS_URL', 'a redis:// or rediss:// URL', '(hidden)');
  }
  const redisKeyPrefix = value(env, 'REDIS_KEY_PREFIX') ?? 'vmaccess:';
  if (!/^[A-Za-z0-9:_.-]{1,64}$/.test(redisKeyPrefix)) {
    throw new ConfigError('REDIS_KEY_PREFIX', 'up to 64 letters, digits or : _ . -', redisKeyPrefix);
  }
  const pinPepper = value(env, 'PIN_PEPPER');
  if (pinPepper !== undefined && pinPepper.length < 16) {
    throw new ConfigError('PIN_PEPPER', 'a secret of at least 16 characters', undefined);
  }
  if (databaseUrl !== undefined && pinPepper === undefined) {
    throw new ConfigError('PIN_PEPPER', 'a secret of at least 16 characters (required when DATABASE_URL is set)', undefined);
  }
  const logLevel = (value(env, 'LOG_LEVEL') ?? 'info') as LevelWithSilent;
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError('LOG_LEVEL', LOG_LEVELS.join(', '), logLevel);
  const cwd = options.cwd ?? process.cwd();
  const appPromptsDir = resolve(cwd, value(env, 'PROMPTS_DIR') ?? promptsDir);
  const freeswitchPromptsDir = value(env, 'FREESWITCH_PROMPTS_DIR') ?? appPromptsDir;
  if (!freeswitchPromptsDir.startsWith('/')) {
    throw new ConfigError('FREESWITCH_PROMPTS_DIR', 'an absolute path (as FreeSWITCH sees it)', freeswitchPromptsDir);
  }
  const dataDir = resolve(cwd, value(env, 'DATA_DIR') ?? './data');
  const freeswitchMessagesDir = value(env, 'FREESWITCH_MESSAGES_DIR') ?? join(dataDir, 'messages');
  if (!freeswitchMessagesDir.startsWith('/')) {
    throw new ConfigError('FREESWITCH_MESSAGES_DIR', 'an absolute path (as FreeSWITCH sees it)', freeswitchMessagesDir);
  }
  const freeswitchProfile = value(env, 'FREESWITCH_PROFILE') ?? 'drachtio_mrf';
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(freeswitchProfile)) {
    throw new ConfigError('FREESWITCH_PROFILE', 'a SIP profile name (letters, digits, _ . -)', freeswitchProfile);
  }
  const messageAudioStore = value(env, 'MESSAGE_AUDIO_STORE') ?? 'file';
  if (messageAudioStore !== 'file' && messageAudioStore !== 'database') {
    throw new ConfigError('MESSAGE_AUDIO_STORE', "'file' or 'database'", messageAudioStore);
  }
  const eslAdvertised = value(env, 'ESL_ADVERTISED_ADDRESS');
  if (eslAdvertised !== undefined && !/^[A-Za-z0-9.\-:]+$/.test(eslAdvertised)) {
    throw new ConfigError('ESL_ADVERTISED_ADDRESS', 'a host name or address', eslAdvertised);
  }

  return {
    sipEngine: sipEngineRaw,
    sip: { address: sipAddress, port: sipPort },
    rtp: { address: rtpAddress, portMin, portMax },
    http: {
      address: ipAddress(env, 'HTTP_ADDRESS', '127.0.0.1'),
      port: integer(env, 'HTTP_PORT', 8080, 0, 65535, 'a port number from 0 to 65535'),
      trustProxy: parseTrustedPeers(value(env, 'HTTP_TRUST_PROXY') ?? '', 'HTTP_TRUST_PROXY').cidrs,
    },
    databaseUrl,
    dataDir,
    redisUrl,
    redisKeyPrefix,
    pinPepper,
    trustedSipPeers: parseTrustedPeers(value(env, 'TRUSTED_SIP_PEERS') ?? '127.0.0.0/8,::1'),
    defaultDomain: domainName(env, 'DEFAULT_DOMAIN', options.demo === true ? 'demo.local' : undefined),
    drachtio: {
      host: hostName(env, 'DRACHTIO_HOST', '127.0.0.1'),
      port: integer(env, 'DRACHTIO_PORT', 9022, 1, 65535, 'a port number from 1 to 65535'),
      secret: value(env, 'DRACHTIO_SECRET') ?? 'cymru',
    },
    freeswitch: {
      host: hostName(env, 'FREESWITCH_HOST', '127.0.0.1'),
      port: integer(env, 'FREESWITCH_PORT', 8021, 1, 65535, 'a port number from 1 to 65535'),
      secret: value(env, 'FREESWITCH_SECRET') ?? 'ClueCon',
      profile: freeswitchProfile,
      promptsDir: freeswitchPromptsDir.replace(/\/+$/, '') || '/',
      messagesDir: freeswitchMessagesDir.replace(/\/+$/, '') || '/',
      eslListen: {
        address: ipAddress(env, 'ESL_LISTEN_ADDRESS', '0.0.0.0'),
        port: integer(env, 'ESL_LISTEN_PORT', 8085, 0, 65535, 'a port number from 0 to 65535'),
      },
      eslAdvertisedAddress: eslAdvertised ?? null,
    },
    logLevel,
    promptsDir: appPromptsDir,
    answerDelayMs: integer(env, 'ANSWER_DELAY_MS', 0, 0, 60_000),
    ivr: {
      noInputTimeoutMs: integer(env, 'IVR_NO_INPUT_TIMEOUT_MS', 5000, 500, 60_000),
      interDigitTimeoutMs: integer(env, 'IVR_INTER_DIGIT_TIMEOUT_MS', 5000, 500, 60_000),
    },
    shutdownGraceMs: integer(env, 'SHUTDOWN_GRACE_MS', 30_000, 0, 300_000),
    maxCalls: integer(env, 'MAX_CALLS', DEFAULT_MAX_CALLS, 1, 100_000),
    inviteRate: {
      perSecond: integer(env, 'INVITE_RATE_PER_SOURCE', 5, 0, 100_000, 'an integer from 0 (no limit) to 100000'),
      burst: integer(env, 'INVITE_BURST_PER_SOURCE', 10, 1, 100_000),
    },
    portal: { secureCookies: boolean(env, 'PORTAL_SECURE_COOKIES', false) },
    mwiContacts: parseMwiContacts(value(env, 'MWI_CONTACTS')),
    messageAudioStore,
  };
}
