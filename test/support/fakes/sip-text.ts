/**
 * Plain-text SIP messages for the fakes (FakeDrachtioServer, FakeFreeSwitch): just enough parsing
 * and building to play the network side, and deliberately none of the server's or drachtio-srf's
 * code, so neither side can hide the other's mistakes.
 */
import { randomBytes } from 'node:crypto';

export interface SipText {
  readonly startLine: string;
  /** Header name (lower case) → values in order. */
  readonly headers: Map<string, string[]>;
  readonly body: string;
  readonly isResponse: boolean;
  readonly method: string | undefined;
  readonly uri: string | undefined;
  readonly status: number | undefined;
}

const COMPACT: Record<string, string> = { i: 'call-id', f: 'from', t: 'to', v: 'via', m: 'contact', l: 'content-length', c: 'content-type' };

export function parseSip(text: string): SipText {
  const split = text.indexOf('\r\n\r\n');
  const head = split === -1 ? text : text.slice(0, split);
  const body = split === -1 ? '' : text.slice(split + 4);
  const [startLine = '', ...lines] = head.split('\r\n');
  const headers = new Map<string, string[]>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const raw = line.slice(0, colon).trim().toLowerCase();
    const name = COMPACT[raw] ?? raw;
    headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
  }
  const isResponse = startLine.startsWith('SIP/2.0 ');
  const parts = startLine.split(' ');
  return {
    startLine,
    headers,
    body,
    isResponse,
    method: isResponse ? undefined : parts[0],
    uri: isResponse ? undefined : parts[1],
    status: isResponse ? Number(parts[1]) : undefined,
  };
}

export function header(msg: SipText, name: string): string | undefined {
  return msg.headers.get(name.toLowerCase())?.[0];
}

/** Serialises with the body's Content-Length (RFC 3261 §20.14). */
export function buildSip(startLine: string, headers: ReadonlyArray<readonly [string, string]>, body = ''): string {
  const lines = [startLine, ...headers.filter(([n]) => n.toLowerCase() !== 'content-length').map(([n, v]) => `${n}: ${v}`),
    `Content-Length: ${Buffer.byteLength(body)}`];
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

/** The headers of a parsed message as name/value pairs (names as written by this module: lower case). */
export function headerPairs(msg: SipText): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (const [name, values] of msg.headers) for (const v of values) pairs.push([name, v]);
  return pairs;
}

export function withHeader(pairs: Array<[string, string]>, name: string, value: string): Array<[string, string]> {
  const lower = name.toLowerCase();
  return [...pairs.filter(([n]) => n.toLowerCase() !== lower), [name, value]];
}

export function tagOf(nameAddr: string | undefined): string | undefined {
  return nameAddr === undefined ? undefined : /;\s*tag=([^;>\s]+)/i.exec(nameAddr)?.[1];
}

export function token(bytes = 6): string {
  return randomBytes(bytes).toString('hex');
}
