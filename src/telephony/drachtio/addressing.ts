/**
 * What the shared router needs from an INVITE that drachtio-server handed us: the same fields the
 * embedded engine reads from its own parser, taken here with drachtio-srf's (`Srf.parseUri`,
 * `getParsedHeader`). Unparseable headers count as absent, never as an error: the router then
 * answers 404 like for any unknown number.
 */
import type { CallAddressing } from '../router.js';
import type { ParsedSipUri, SrfRequest } from './drachtio-types.js';
import { Srf } from './modules.js';

/** A SIP URI as drachtio-srf parses it; undefined when absent or unparseable. */
export function uriOf(text: string | undefined): ParsedSipUri | undefined {
  if (text === undefined || text === '') return undefined;
  try {
    return Srf.parseUri(text) ?? undefined;
  } catch {
    return undefined;
  }
}

/** The URI of a name-addr header (From, To, P-Asserted-Identity); undefined when absent or unreadable. */
export function headerUri(req: SrfRequest, name: 'from' | 'to' | 'p-asserted-identity'): ParsedSipUri | undefined {
  if (!req.has(name)) return undefined;
  try {
    return uriOf(req.getParsedHeader(name).uri);
  } catch {
    return undefined;
  }
}

function displayNameOf(req: SrfRequest): string | undefined {
  if (!req.has('from')) return undefined;
  try {
    return req.getParsedHeader('from').name?.replace(/^"(.*)"$/, '$1') ?? undefined;
  } catch {
    return undefined;
  }
}

/** A header's value(s) as drachtio-srf gives them (several headers of a name come comma-joined). */
function headerValues(req: SrfRequest, name: string): string[] {
  const value = req.has(name) ? req.get(name) : undefined;
  return value === undefined || value === '' ? [] : [value];
}

/** `sourceAddress` is drachtio-server's report of the packet's network source (RFC 3325 trust). */
export function addressingOf(req: SrfRequest): CallAddressing {
  const ruri = uriOf(req.uri);
  const to = headerUri(req, 'to');
  const from = headerUri(req, 'from');
  const asserted = headerUri(req, 'p-asserted-identity');
  return {
    requestUser: ruri?.user ?? undefined,
    requestHost: ruri?.host ?? undefined,
    toHost: to?.host ?? undefined,
    fromUser: from?.user ?? undefined,
    fromHost: from?.host ?? undefined,
    assertedUser: asserted?.user ?? undefined,
    sourceAddress: req.source_address,
    fromDisplayName: displayNameOf(req),
    requestUri: req.uri,
    diversion: headerValues(req, 'diversion'),
    historyInfo: headerValues(req, 'history-info'),
  };
}
