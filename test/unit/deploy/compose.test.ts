/**
 * The production stack files (docker-compose.yml, Dockerfile, .env.example, the drachtio config
 * template). No Docker engine runs here, so the stack itself cannot start in tests: this checks
 * that the compose file parses — with Debian's docker-compose when it is installed (CI installs
 * it), always with a YAML parser — and that it says what README promises: official images with
 * pinned versions, healthchecks and start order, the prompt folder shared with FreeSWITCH, SIP
 * published and the control ports (9022, 8021) not.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { packageRoot } from '../../../src/paths.js';

interface Service {
  image?: string;
  build?: unknown;
  command?: string | string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  env_file?: string | string[];
}

const composeText = readFileSync(join(packageRoot, 'docker-compose.yml'), 'utf8');
const compose = parse(composeText) as { services: Record<string, Service> };
const services = compose.services;
const envExample = readFileSync(join(packageRoot, '.env.example'), 'utf8');
const hasDockerCompose = spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0;

describe('docker-compose.yml', () => {
  it('has the five services, official images with pinned versions, vmaccess built from the Dockerfile', () => {
    expect(Object.keys(services).sort()).toEqual(['drachtio', 'freeswitch', 'postgres', 'redis', 'vmaccess']);
    expect(services.drachtio!.image).toMatch(/^drachtio\/drachtio-server:\d+\.\d+\.\d+$/);
    expect(services.freeswitch!.image).toMatch(/^drachtio\/drachtio-freeswitch-mrf:v\d+\.\d+\.\d+(-\w+)?$/);
    expect(services.postgres!.image).toMatch(/^postgres:\d+\.\d+/);
    expect(services.redis!.image).toMatch(/^redis:\d+\.\d+\.\d+/);
    for (const s of Object.values(services)) expect(s.image ?? '').not.toMatch(/:latest$/);
    expect(services.vmaccess!.build).toBe('.');
    expect(existsSync(join(packageRoot, 'Dockerfile'))).toBe(true);
  });

  it('every service has a healthcheck; vmaccess starts after the other four are healthy', () => {
    for (const [name, s] of Object.entries(services)) expect(s.healthcheck?.test, name).toBeDefined();
    expect(services.vmaccess!.depends_on).toEqual({
      postgres: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' },
      drachtio: { condition: 'service_healthy' }, freeswitch: { condition: 'service_healthy' },
    });
  });

  it('publishes SIP 5060 and RTP, never drachtio 9022 or the event socket 8021', () => {
    const published = Object.values(services).flatMap((s) => s.ports ?? []);
    expect(services.drachtio!.ports).toEqual(expect.arrayContaining(['5060:5060/udp', '5060:5060/tcp']));
    expect(published.some((p) => /^20000-20199:20000-20199\/udp$/.test(p))).toBe(true);
    for (const p of published) expect(p, p).not.toMatch(/(^|:)(9022|8021)(\/|$|:)/);
    expect(services.vmaccess!.ports).toEqual(['127.0.0.1:8080:8080']);
  });

  it('runs vmaccess on the drachtio engine with Postgres, Redis and the secrets from .env (required, no defaults)', () => {
    const env = services.vmaccess!.environment!;
    expect(env).toMatchObject({ SIP_ENGINE: 'drachtio', REDIS_URL: 'redis://redis:6379', DRACHTIO_HOST: 'drachtio', FREESWITCH_HOST: 'freeswitch' });
    expect(env.DATABASE_URL).toMatch(/^postgres:\/\/vmaccess:\$\{POSTGRES_PASSWORD:\?[^}]+\}@postgres:5432\/vmaccess$/);
    expect(services.vmaccess!.env_file).toBe('.env');
    // Every ${VAR} the file uses is documented in .env.example; secrets have no default.
    const used = new Set([...composeText.matchAll(/\$\{([A-Z_]+)(?::[?-][^}]*)?\}/g)].map((m) => m[1]!));
    for (const name of used) expect(envExample, name).toMatch(new RegExp(`^${name}=`, 'm'));
    for (const secret of ['PIN_PEPPER', 'DRACHTIO_SECRET', 'FREESWITCH_SECRET', 'POSTGRES_PASSWORD']) {
      expect(envExample).toMatch(new RegExp(`^${secret}=change-me`, 'm'));
    }
    for (const secret of ['DRACHTIO_SECRET', 'FREESWITCH_SECRET', 'POSTGRES_PASSWORD']) {
      expect(composeText).toContain(`\${${secret}:?`);
    }
    expect(composeText).not.toMatch(/cymru|ClueCon/);
  });

  it('FreeSWITCH mounts the prompt folder at the path vmaccess gives it (FREESWITCH_PROMPTS_DIR)', () => {
    const dir = services.vmaccess!.environment!.FREESWITCH_PROMPTS_DIR!;
    expect(services.freeswitch!.volumes).toContain(`./ivr-prompts:${dir}:ro`);
    expect(existsSync(join(packageRoot, 'ivr-prompts', 'en', 'enter-access-code.wav'))).toBe(true);
  });

  it('gives drachtio-server its secret through the config template, never its default', () => {
    const template = readFileSync(join(packageRoot, 'deploy/drachtio/drachtio.conf.xml.template'), 'utf8');
    expect(template).toMatch(/<admin port="9022" secret="__DRACHTIO_SECRET__">/);
    expect(String(services.drachtio!.command)).toContain('__DRACHTIO_SECRET__|$$DRACHTIO_SECRET');
  });

  it.skipIf(!hasDockerCompose)('parses with docker-compose config (Debian docker-compose)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vmaccess-compose-'));
    try {
      cpSync(join(packageRoot, 'docker-compose.yml'), join(dir, 'docker-compose.yml'));
      cpSync(join(packageRoot, '.env.example'), join(dir, '.env'));
      cpSync(join(packageRoot, 'deploy'), join(dir, 'deploy'), { recursive: true });
      const out = execFileSync('docker-compose', ['config'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      const resolved = parse(out) as { services: Record<string, Service> };
      expect(resolved.services.vmaccess!.environment!.DRACHTIO_SECRET).toBe('change-me-drachtio-secret');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Dockerfile', () => {
  it('copies what `vmaccess serve` reads at run time and runs as an unprivileged user', () => {
    const dockerfile = readFileSync(join(packageRoot, 'Dockerfile'), 'utf8');
    for (const path of ['bin', 'src/store/migrations', 'ivr-prompts']) {
      expect(dockerfile).toContain(`COPY ${path} ./${path}`);
      expect(existsSync(join(packageRoot, path))).toBe(true);
    }
    expect(dockerfile).toMatch(/^FROM node:20[.\d]*-bookworm-slim AS build$/m);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^CMD \["node", "bin\/vmaccess\.js", "serve"\]$/m);
  });
});
