/**
 * Where responses go: the received/rport parameters a server adds to the top Via (RFC 3261
 * §18.2.1, RFC 3581 §4) and the destination they lead to (§18.2.2).
 */
import type { SipMessage } from './message.js';
import type { TransportAddress } from './transport.js';
import { formatVia, parseVia } from './via.js';

const DEFAULT_SIP_PORT = 5060;

function sameAddress(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/**
 * "the server MUST examine the value of the "sent-by" parameter in the top Via header field
 * value. If the host portion of the "sent-by" parameter contains a domain name, or if it contains
 * an IP address that differs from the packet source address, the server MUST add a "received"
 * parameter to that Via header field value." (§18.2.1) With rport "the server MUST insert a
 * "received" parameter containing the source IP address that the request came from, even if it
 * is identical to the value of the "sent-by" component" and set rport to the source port
 * (RFC 3581 §4). Throws SipParseError when the top Via is unreadable.
 */
export function annotateTopVia(request: SipMessage, source: TransportAddress): void {
  const top = request.get('via');
  if (top === undefined) return;
  const via = parseVia(top);
  let changed = false;
  if (via.rport === null) {
    via.params['rport'] = String(source.port);
    via.params['received'] = source.address;
    changed = true;
  } else if (via.received !== undefined ? via.received !== source.address : !sameAddress(via.host, source.address)) {
    // A received parameter the sender wrote itself is replaced by what we saw.
    via.params['received'] = source.address;
    changed = true;
  }
  if (changed) request.setFirst('Via', formatVia(via));
}

/**
 * §18.2.2: over a reliable transport the response goes back on the connection the request came
 * on; otherwise to the "received" address at the sent-by port (5060 by default), or with rport to
 * the source address and port (RFC 3581 §4). multicast maddr is not supported and ignored.
 */
export function responseDestination(request: SipMessage, source: TransportAddress): TransportAddress {
  if (source.transport === 'tcp') return source;
  const via = parseVia(request.get('via') ?? '');
  if (typeof via.rport === 'number' || via.rport === null) {
    return { transport: 'udp', address: source.address, port: source.port };
  }
  // "received" is the source address by construction (annotateTopVia), so the response goes to
  // the address the request really came from, never to one the request merely names.
  return { transport: 'udp', address: source.address, port: via.port ?? DEFAULT_SIP_PORT };
}
