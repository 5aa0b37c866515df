import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runtimeFilePath } from '../../src/runtime/server-runtime.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

describe('HTTP: /healthz and the admin endpoint', () => {
  let t: TestServer;
  let base: string;
  beforeAll(async () => {
    t = await startTestServer('pglite');
    base = `http://127.0.0.1:${t.server.http.port}`;
  });
  afterAll(async () => { await t?.stop(); });

  it('GET /healthz is 200 while the store answers', async () => {
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', checks: { store: 'ok', sip: 'ok' } });
  });

  it('the admin endpoint needs the bearer token from DATA_DIR', async () => {
    expect((await fetch(`${base}/admin/audit?domain=demo.local`)).status).toBe(401);
    const wrong = await fetch(`${base}/admin/audit?domain=demo.local`, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    const { adminToken } = JSON.parse(await readFile(runtimeFilePath(t.config.dataDir), 'utf8')) as { adminToken: string };
    const ok = await fetch(`${base}/admin/audit?domain=demo.local`, { headers: { authorization: `Bearer ${adminToken}` } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ events: [] });
    const missing = await fetch(`${base}/admin/audit`, { headers: { authorization: `Bearer ${adminToken}` } });
    expect(missing.status).toBe(400);
    expect((await fetch(`${base}/nothing-here`)).status).toBe(404);
  });

  it('GET /healthz is 503 once the store stops answering', async () => {
    await t.server.core.db.close();
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: 'unavailable', checks: { store: 'failing', sip: 'ok' } });
  });
});
