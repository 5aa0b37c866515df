/**
 * From, To, Contact, Route, Record-Route, Refer-To... values (RFC 3261 §20.10, §25.1):
 *   ( name-addr / addr-spec ) *( SEMI generic-param )
 *   name-addr = [ display-name ] LAQUOT addr-spec RAQUOT
 *   display-name = *(token LWS) / quoted-string
 */
import { SipParseError } from './errors.js';
import { formatParams, isToken, quote, Scanner, trimLws, type Params } from './grammar.js';
import { isAbsoluteUri, parseUri, uriScheme } from './uri.js';

export interface NameAddr {
  /** Display name, unquoted and unescaped. */
  displayName?: string;
  /** The URI as written (without angle brackets). */
  uri: string;
  /** Header parameters (after the URI), e.g. tag, expires, q. */
  params: Params;
  tag?: string;
}

function bad(detail: string): never {
  throw new SipParseError(`bad address: ${detail}`);
}

/** Index of the first "<" outside a quoted string, or -1. */
function findLaquot(value: string): number {
  let inQuotes = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charAt(i);
    if (inQuotes) {
      if (c === '\\') i++;
      else if (c === '"') inQuotes = false;
    } else if (c === '"') inQuotes = true;
    else if (c === '<') return i;
  }
  return -1;
}

/** Checks the URI inside an address: SIP/SIPS/tel by their grammar, others as absoluteURI. */
export function validateAddressUri(uri: string): void {
  const scheme = uriScheme(uri);
  if (scheme === 'sip' || scheme === 'sips' || scheme === 'tel') parseUri(uri);
  else if (!isAbsoluteUri(uri)) bad('URI');
}

function parseDisplayName(text: string): string | undefined {
  if (text === '') return undefined;
  if (text.startsWith('"')) {
    const sc = new Scanner(text, 'display name');
    const name = sc.quoted();
    sc.skipWs();
    if (!sc.done) bad('text after quoted display name');
    return name;
  }
  const words = text.split(/[ \t]+/);
  if (!words.every(isToken)) bad('display name');
  return words.join(' ');
}

export function parseNameAddr(value: string): NameAddr {
  const text = trimLws(value);
  const laquot = findLaquot(text);
  let uri: string;
  let rest: string;
  let displayName: string | undefined;
  if (laquot >= 0) {
    displayName = parseDisplayName(trimLws(text.slice(0, laquot)));
    const raquot = text.indexOf('>', laquot);
    if (raquot < 0) bad('missing ">"');
    uri = text.slice(laquot + 1, raquot);
    rest = text.slice(raquot + 1);
  } else {
    // addr-spec form: "if the URI contains a comma, question mark or semicolon, the URI MUST be
    // enclosed in angle brackets" (RFC 3261 §20.10), so the first ";" starts the header params.
    if (text.includes('"')) bad('unbalanced quotes');
    const semi = text.indexOf(';');
    uri = trimLws(semi < 0 ? text : text.slice(0, semi));
    rest = semi < 0 ? '' : text.slice(semi);
    if (/[,?]/.test(uri)) bad('addr-spec needs angle brackets');
  }
  if (uri === '' || /[\s<>]/.test(uri)) bad('URI');
  validateAddressUri(uri);

  const params = new Scanner(rest, 'address parameters').params();
  const result: NameAddr = { uri, params };
  if (displayName !== undefined) result.displayName = displayName;
  const tag = params['tag'];
  if (tag !== undefined) {
    if (tag === null || !isToken(tag)) bad('tag');
    result.tag = tag;
  }
  return result;
}

/** Writes an address in name-addr form (always with angle brackets, RFC 3261 §20.10). */
export function formatNameAddr(addr: { displayName?: string; uri: string; params?: Params }): string {
  const display = addr.displayName === undefined ? '' : `${quote(addr.displayName)} `;
  return `${display}<${addr.uri}>${addr.params ? formatParams(addr.params) : ''}`;
}
