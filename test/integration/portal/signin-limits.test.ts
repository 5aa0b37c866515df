/**
 * Whose address the per-address sign-in limit counts (20 failures from one address block it):
 * the peer's, unless HTTP_TRUST_PROXY names the peer as a reverse proxy — then the client's
 * address from X-Forwarded-For. Without the setting a client cannot escape the limit by sending
 * a new X-Forwarded-For with every attempt; with it, one client behind the proxy does not block
 * everyone else behind it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { DEMO_PORTAL_PASSWORDS } from '../../../src/store/demo.js';
import { startTestServer, type TestServer } from '../../support/test-server.js';

const servers: TestServer[] = [];
afterAll(async () => { await Promise.all(servers.map((s) => s.stop())); });

async function server(env: Record<string, string>): Promise<(user: string, password: string, forwardedFor: string) => Promise<number>> {
  const t = await startTestServer('pglite', env);
  servers.push(t);
  const base = `http://127.0.0.1:${t.server.http.port}`;
  return async (user, password, forwardedFor) => (await fetch(`${base}/api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': forwardedFor },
    body: JSON.stringify({ domain: 'demo.local', user, password }),
  })).status;
}

/** Twenty failed sign-ins, each for another (nonexistent) user so no account lock interferes. */
async function twentyFailures(signIn: (user: string, password: string, forwardedFor: string) => Promise<number>, forwardedFor: (i: number) => string): Promise<void> {
  for (let i = 0; i < 20; i++) expect(await signIn(String(9000 + i), 'wrong-password', forwardedFor(i))).toBe(401);
}

describe('sign-in limits and HTTP_TRUST_PROXY', () => {
  it('unset: X-Forwarded-For is not believed — the peer is blocked whatever address it claims', async () => {
    const signIn = await server({});
    await twentyFailures(signIn, (i) => `198.51.100.${i + 1}`);
    expect(await signIn('201', DEMO_PORTAL_PASSWORDS['201'], '198.51.100.99')).toBe(401);
  }, 60_000);

  it('set to the proxy: the client behind it is counted, and only that client is blocked', async () => {
    const signIn = await server({ HTTP_TRUST_PROXY: '127.0.0.1' });
    await twentyFailures(signIn, () => '203.0.113.5');
    expect(await signIn('201', DEMO_PORTAL_PASSWORDS['201'], '203.0.113.5')).toBe(401);
    expect(await signIn('201', DEMO_PORTAL_PASSWORDS['201'], '203.0.113.6')).toBe(200);
  }, 60_000);
});
