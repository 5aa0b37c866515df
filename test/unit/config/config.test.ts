import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseTrustedPeers } from '../../../src/config.js';

function errorOf(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('no error');
}

describe('config defaults (CONTRACT)', () => {
  const c = loadConfig({}, { cwd: '/srv/vm' });
  it('uses the embedded engine on 0.0.0.0:5060 with RTP 40000-49999 and HTTP 127.0.0.1:8080', () => {
    expect(c.sipEngine).toBe('embedded');
    expect(c.sip).toEqual({ address: '0.0.0.0', port: 5060 });
    expect(c.rtp).toEqual({ address: null, portMin: 40000, portMax: 49999 });
    expect(c.http).toEqual({ address: '127.0.0.1', port: 8080, trustProxy: [] });
  });
  it('keeps data in ./data, PGlite and in-process counters, trusts loopback', () => {
    expect(c.dataDir).toBe('/srv/vm/data');
    expect(c.databaseUrl).toBeUndefined();
    expect(c.redisUrl).toBeUndefined();
    expect(c.trustedSipPeers.contains('127.0.0.1')).toBe(true);
    expect(c.trustedSipPeers.contains('127.1.2.3')).toBe(true);
    expect(c.trustedSipPeers.contains('::1')).toBe(true);
    expect(c.trustedSipPeers.contains('::ffff:127.0.0.1')).toBe(true);
    expect(c.trustedSipPeers.contains('192.0.2.1')).toBe(false);
    expect(c.defaultDomain).toBeUndefined();
    expect(c.logLevel).toBe('info');
    expect(c.drachtio).toEqual({ host: '127.0.0.1', port: 9022, secret: 'cymru' });
    expect(c.freeswitch).toEqual({
      host: '127.0.0.1', port: 8021, secret: 'ClueCon', profile: 'drachtio_mrf',
      promptsDir: c.promptsDir, messagesDir: join(c.dataDir, 'messages'), eslListen: { address: '0.0.0.0', port: 8085 }, eslAdvertisedAddress: null,
    });
    expect(c.mwiContacts.size).toBe(0);
    expect(c.freeswitch.promptsDir.startsWith('/')).toBe(true);
    expect(c.ivr).toEqual({ noInputTimeoutMs: 5000, interDigitTimeoutMs: 5000 });
    expect(c.shutdownGraceMs).toBe(30_000);
  });
  it('--demo makes demo.local the default domain', () => {
    expect(loadConfig({}, { demo: true }).defaultDomain).toBe('demo.local');
    expect(loadConfig({ DEFAULT_DOMAIN: 'Other.Local' }, { demo: true }).defaultDomain).toBe('other.local');
  });
  it('drachtio engine: FreeSWITCH prompt path, profile and the ESL listener are configurable', () => {
    const c = loadConfig({
      SIP_ENGINE: 'drachtio', FREESWITCH_PROMPTS_DIR: '/opt/vmaccess/ivr-prompts/', FREESWITCH_PROFILE: 'mrf',
      ESL_LISTEN_ADDRESS: '10.0.0.2', ESL_LISTEN_PORT: '0', ESL_ADVERTISED_ADDRESS: 'vmaccess',
    });
    expect(c.sipEngine).toBe('drachtio');
    expect(c.freeswitch).toMatchObject({
      promptsDir: '/opt/vmaccess/ivr-prompts', profile: 'mrf', eslListen: { address: '10.0.0.2', port: 0 }, eslAdvertisedAddress: 'vmaccess',
    });
  });
  it('RTP_ADDRESS defaults to a concrete SIP_ADDRESS', () => {
    expect(loadConfig({ SIP_ADDRESS: '192.0.2.10' }).rtp.address).toBe('192.0.2.10');
    expect(loadConfig({ SIP_ADDRESS: '192.0.2.10', RTP_ADDRESS: '198.51.100.7' }).rtp.address).toBe('198.51.100.7');
  });
});

describe('bad values name the variable and what is expected', () => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ SIP_ENGINE: 'asterisk' }, 'SIP_ENGINE'],
    [{ SIP_PORT: 'abc' }, 'SIP_PORT'],
    [{ SIP_PORT: '70000' }, 'SIP_PORT'],
    [{ SIP_ADDRESS: 'localhost' }, 'SIP_ADDRESS'],
    [{ RTP_ADDRESS: 'x' }, 'RTP_ADDRESS'],
    [{ RTP_PORT_MIN: '40001' }, 'RTP_PORT_MIN'],
    [{ RTP_PORT_MIN: '40000', RTP_PORT_MAX: '40000' }, 'RTP_PORT_MAX'],
    [{ HTTP_PORT: '-1' }, 'HTTP_PORT'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
    [{ DATABASE_URL: 'postgres://root@127.0.0.1/test' }, 'PIN_PEPPER'],
    [{ PIN_PEPPER: 'short' }, 'PIN_PEPPER'],
    [{ REDIS_URL: 'http://x' }, 'REDIS_URL'],
    [{ TRUSTED_SIP_PEERS: '10.0.0.0/33' }, 'TRUSTED_SIP_PEERS'],
    [{ TRUSTED_SIP_PEERS: 'example.com' }, 'TRUSTED_SIP_PEERS'],
    [{ DEFAULT_DOMAIN: 'bad domain' }, 'DEFAULT_DOMAIN'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ DRACHTIO_PORT: '0' }, 'DRACHTIO_PORT'],
    [{ FREESWITCH_PROMPTS_DIR: 'ivr-prompts' }, 'FREESWITCH_PROMPTS_DIR'],
    [{ FREESWITCH_PROFILE: 'drachtio mrf' }, 'FREESWITCH_PROFILE'],
    [{ ESL_LISTEN_ADDRESS: 'any' }, 'ESL_LISTEN_ADDRESS'],
    [{ ESL_LISTEN_PORT: '99999' }, 'ESL_LISTEN_PORT'],
    [{ ESL_ADVERTISED_ADDRESS: 'a b' }, 'ESL_ADVERTISED_ADDRESS'],
    [{ ANSWER_DELAY_MS: '1.5' }, 'ANSWER_DELAY_MS'],
    [{ IVR_NO_INPUT_TIMEOUT_MS: '10' }, 'IVR_NO_INPUT_TIMEOUT_MS'],
    [{ HTTP_TRUST_PROXY: 'proxy.example' }, 'HTTP_TRUST_PROXY'],
    [{ HTTP_TRUST_PROXY: '10.0.0.0/33' }, 'HTTP_TRUST_PROXY'],
    [{ HTTP_TRUST_PROXY: 'true' }, 'HTTP_TRUST_PROXY'],
  ];
  it.each(cases)('%o → %s', (env, variable) => {
    const err = errorOf(env);
    expect(err.variable).toBe(variable);
    expect(err.message.startsWith(`${variable}: expected `)).toBe(true);
    expect(err.message).not.toContain('\n');
  });
  it('never echoes secrets back', () => {
    expect(errorOf({ PIN_PEPPER: 'tooshort' }).message).not.toContain('tooshort');
    expect(errorOf({ DATABASE_URL: 'mysql://user:hunter2@x' }).message).not.toContain('hunter2');
  });
});

describe('trusted peers', () => {
  it('parses CIDR lists with IPv4 and IPv6 and single hosts', () => {
    const t = parseTrustedPeers('10.1.0.0/16, 192.0.2.5, 2001:db8::/32');
    expect(t.contains('10.1.200.3')).toBe(true);
    expect(t.contains('10.2.0.1')).toBe(false);
    expect(t.contains('192.0.2.5')).toBe(true);
    expect(t.contains('192.0.2.6')).toBe(false);
    expect(t.contains('2001:db8::1')).toBe(true);
    expect(t.contains('not-an-ip')).toBe(false);
  });
  it('an empty list trusts nobody', () => {
    expect(parseTrustedPeers('').contains('127.0.0.1')).toBe(false);
  });
});

describe('HTTP_TRUST_PROXY', () => {
  it('unset or empty: no proxy is believed', () => {
    expect(loadConfig({}).http.trustProxy).toEqual([]);
    expect(loadConfig({ HTTP_TRUST_PROXY: ' ' }).http.trustProxy).toEqual([]);
  });
  it('a comma list of addresses and CIDRs, IPv4 and IPv6', () => {
    expect(loadConfig({ HTTP_TRUST_PROXY: '10.0.0.0/8, 192.0.2.7,::1' }).http.trustProxy).toEqual(['10.0.0.0/8', '192.0.2.7/32', '::1/128']);
  });
});

describe('MWI_CONTACTS and FREESWITCH_MESSAGES_DIR', () => {
  it('parses mailbox@domain=contact pairs, a mailbox may have several; anything else stops the server', () => {
    const c = loadConfig({ MWI_CONTACTS: '201@Demo.Local=sip:201@10.0.0.5:5060, 201@demo.local=sip:201-desk@10.0.0.6,290@demo.local=sip:lamp@10.0.0.7' });
    expect([...c.mwiContacts.entries()]).toEqual([
      ['201@demo.local', ['sip:201@10.0.0.5:5060', 'sip:201-desk@10.0.0.6']],
      ['290@demo.local', ['sip:lamp@10.0.0.7']],
    ]);
    expect(() => loadConfig({ MWI_CONTACTS: '201=sip:x@y' })).toThrow(/MWI_CONTACTS/);
    expect(() => loadConfig({ MWI_CONTACTS: '201@demo.local=http://x' })).toThrow(/MWI_CONTACTS/);
    expect(loadConfig({ FREESWITCH_MESSAGES_DIR: '/var/lib/vmaccess/messages/' }).freeswitch.messagesDir).toBe('/var/lib/vmaccess/messages');
    expect(() => loadConfig({ FREESWITCH_MESSAGES_DIR: 'relative/dir' })).toThrow(/FREESWITCH_MESSAGES_DIR/);
  });
});
