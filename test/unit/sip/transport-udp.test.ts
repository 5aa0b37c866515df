import { createSocket } from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import { SipUdpTransport, type TransportAddress } from '../../../src/telephony/embedded/sip/index.js';

async function exchange(address: string): Promise<void> {
  const transport = await SipUdpTransport.bind(address, 0, silentLogger);
  const peer = createSocket(address.includes(':') ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve) => peer.bind(0, address, resolve));
    const received: Array<{ text: string; source: TransportAddress }> = [];
    transport.onMessage((buf, source) => received.push({ text: buf.toString(), source }));
    const echoed = new Promise<string>((resolve) => peer.once('message', (buf) => resolve(buf.toString())));
    // Keepalives are swallowed; the message after them is delivered with its source.
    for (const data of ['\r\n\r\n', '\r\n', 'OPTIONS sip:x SIP/2.0\r\n\r\n']) {
      await new Promise<void>((resolve, reject) => peer.send(data, transport.local.port, address, (err) => (err ? reject(err) : resolve())));
    }
    const deadline = Date.now() + 5000;
    while (received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(received).toEqual([{ text: 'OPTIONS sip:x SIP/2.0\r\n\r\n', source: { transport: 'udp', address, port: peer.address().port } }]);
    await transport.send(Buffer.from('pong'), { transport: 'udp', address, port: peer.address().port });
    expect(await echoed).toBe('pong');
    expect(transport.local).toMatchObject({ transport: 'udp', address });
  } finally {
    peer.close();
    await transport.close();
  }
  await expect(transport.send(Buffer.from('x'), { transport: 'udp', address, port: 9 })).rejects.toThrow(/closed/);
}

describe('SipUdpTransport', () => {
  it('binds IPv4, ignores CRLF keepalives, reports the source, sends', () => exchange('127.0.0.1'));
  it('binds IPv6', () => exchange('::1'));
});
