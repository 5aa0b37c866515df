/**
 * The Via header (RFC 3261 §20.42, §18.2.1; RFC 3581 rport).
 *   via-parm = sent-protocol LWS sent-by *( SEMI via-params )
 *   sent-protocol = protocol-name SLASH protocol-version SLASH transport
 */
import { formatHost, formatParams, isValidHost, Scanner, type Params } from './grammar.js';
import { isIPv4, isIPv6 } from 'node:net';

export interface Via {
  /** "SIP/2.0" */
  protocol: string;
  /** Transport in upper case: UDP, TCP, TLS, SCTP, WS... */
  transport: string;
  /** sent-by host, IPv6 without brackets. */
  host: string;
  port?: number;
  /** All via-params in order: branch, received, rport, maddr, ttl and extensions. */
  params: Params;
  branch?: string;
  received?: string;
  /** RFC 3581: null when the client asked for rport without a value, a number once filled in. */
  rport?: number | null;
}

/** The RFC 3261 branch magic cookie (§8.1.1.7): a branch starting with it is globally unique. */
export const BRANCH_MAGIC_COOKIE = 'z9hG4bK';

export function parseVia(value: string): Via {
  const sc = new Scanner(value, 'Via');
  sc.skipWs();
  const name = sc.token('bad protocol');
  sc.skipWs();
  sc.expect('/', 'expected "/"');
  sc.skipWs();
  const version = sc.token('bad protocol version');
  sc.skipWs();
  sc.expect('/', 'expected "/"');
  sc.skipWs();
  const transport = sc.token('bad transport').toUpperCase();
  if (name.toUpperCase() !== 'SIP' || version !== '2.0') sc.fail('not SIP/2.0');
  if (!sc.skipWs()) sc.fail('expected space before sent-by');

  let host: string;
  if (sc.eat('[')) {
    host = sc.readWhile(/[0-9A-Fa-f:.]/);
    sc.expect(']', 'unterminated IPv6 reference');
    if (!isIPv6(host)) sc.fail('bad IPv6 address');
  } else {
    host = sc.readWhile(/[A-Za-z0-9.-]/);
    if (!isValidHost(host)) sc.fail('bad host');
  }
  sc.skipWs();
  let port: number | undefined;
  if (sc.eat(':')) {
    sc.skipWs();
    const digits = sc.digits('bad port');
    port = Number(digits);
    if (digits.length > 5 || port > 65535) sc.fail('bad port');
  }
  const params = sc.params();
  const via: Via = { protocol: 'SIP/2.0', transport, host, params };
  if (port !== undefined) via.port = port;

  const branch = params['branch'];
  if (branch !== undefined) {
    if (branch === null || branch.startsWith('"')) return sc.fail('bad branch');
    via.branch = branch;
  }
  const received = params['received'];
  if (received !== undefined) {
    const address = received?.replace(/^\[|\]$/g, '') ?? '';
    if (!(isIPv4(address) || isIPv6(address))) sc.fail('bad received');
    via.received = address;
  }
  const rport = params['rport'];
  if (rport !== undefined) {
    if (rport === null) via.rport = null;
    else if (/^[0-9]{1,5}$/.test(rport) && Number(rport) <= 65535) via.rport = Number(rport);
    else sc.fail('bad rport');
  }
  return via;
}

export function formatVia(via: Via): string {
  const port = via.port === undefined ? '' : `:${via.port}`;
  return `${via.protocol}/${via.transport} ${formatHost(via.host)}${port}${formatParams(via.params)}`;
}

