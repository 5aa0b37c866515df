/**
 * Building blocks of the RFC 3261 §25 grammar shared by the header parsers: tokens, quoted
 * strings, generic parameters, comma-separated lists and hosts.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { SipParseError } from './errors.js';

/** token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~") */
const TOKEN_RE = /^[A-Za-z0-9\-.!%*_+`'~]+$/;
const TOKEN_CHAR_RE = /[A-Za-z0-9\-.!%*_+`'~]/;
/** gen-value = token / host / quoted-string; a host adds "[", "]" and ":" (IPv6 references). */
const GEN_VALUE_CHAR_RE = /[A-Za-z0-9\-.!%*_+`'~[\]:]/;
const DIGIT_RE = /[0-9]/;

/** hostname = *( domainlabel "." ) toplabel [ "." ] (RFC 3261 §25.1) */
const HOSTNAME_RE =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)*[A-Za-z](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.?$/;

export function isToken(text: string): boolean {
  return TOKEN_RE.test(text);
}

/** A host as written in a Via sent-by or a SIP URI: hostname, IPv4 address or bare IPv6 address. */
export function isValidHost(host: string): boolean {
  if (host.length === 0 || host.length > 255) return false;
  return isIPv4(host) || isIPv6(host) || HOSTNAME_RE.test(host);
}

/** Writes a host for a URI or Via: IPv6 addresses go in brackets (RFC 3261 §25.1 IPv6reference). */
export function formatHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** Parameters of a header value (RFC 3261 §7.3.1): names lower-cased, values as written. */
export type Params = Record<string, string | null>;

/** An object without a prototype, so a parameter named `__proto__` is just a parameter. */
export function emptyParams(): Params {
  return Object.create(null) as Params;
}

/** quoted-string = SWS DQUOTE *(qdtext / quoted-pair) DQUOTE, as a wire string. */
export function quote(text: string): string {
  return `"${text.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** A left-to-right reader over one unfolded header value. Errors name `what`, never the input. */
export class Scanner {
  pos = 0;

  constructor(
    readonly text: string,
    private readonly what: string,
  ) {}

  fail(detail?: string): never {
    throw new SipParseError(detail ? `bad ${this.what}: ${detail}` : `bad ${this.what}`);
  }

  get done(): boolean {
    return this.pos >= this.text.length;
  }

  peek(): string {
    return this.text.charAt(this.pos);
  }

  /** Skips SP and HTAB; true when at least one was skipped (LWS after unfolding). */
  skipWs(): boolean {
    const start = this.pos;
    while (this.pos < this.text.length) {
      const c = this.text.charAt(this.pos);
      if (c !== ' ' && c !== '\t') break;
      this.pos++;
    }
    return this.pos > start;
  }

  eat(char: string): boolean {
    if (this.text.charAt(this.pos) !== char) return false;
    this.pos++;
    return true;
  }

  expect(char: string, detail: string): void {
    if (!this.eat(char)) this.fail(detail);
  }

  /** Reads characters while `charRe` matches one; may return ''. */
  readWhile(charRe: RegExp): string {
    const start = this.pos;
    while (this.pos < this.text.length && charRe.test(this.text.charAt(this.pos))) this.pos++;
    return this.text.slice(start, this.pos);
  }

  token(detail = 'expected token'): string {
    const value = this.readWhile(TOKEN_CHAR_RE);
    if (value === '') this.fail(detail);
    return value;
  }

  digits(detail = 'expected digits'): string {
    const value = this.readWhile(DIGIT_RE);
    if (value === '') this.fail(detail);
    return value;
  }

  /** Reads a quoted-string starting at the current DQUOTE; returns its unescaped content. */
  quoted(): string {
    this.expect('"', 'expected quoted string');
    let out = '';
    while (this.pos < this.text.length) {
      const c = this.text.charAt(this.pos++);
      if (c === '"') return out;
      if (c === '\\') {
        // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
        if (this.pos >= this.text.length) break;
        const escaped = this.text.charAt(this.pos++);
        if (escaped.charCodeAt(0) > 0x7f) this.fail('bad escape in quoted string');
        out += escaped;
        continue;
      }
      out += c;
    }
    return this.fail('unterminated quoted string');
  }

  /**
   * Reads `*( SEMI generic-param )` up to the end of the value (RFC 3261 §25.1):
   * generic-param = token [ EQUAL gen-value ]. Quoted values keep their quotes.
   */
  params(): Params {
    const params = emptyParams();
    for (;;) {
      this.skipWs();
      if (this.done) return params;
      this.expect(';', 'expected ";"');
      this.skipWs();
      const name = this.token('bad parameter name').toLowerCase();
      if (Object.prototype.hasOwnProperty.call(params, name)) this.fail('duplicate parameter');
      this.skipWs();
      let value: string | null = null;
      if (this.eat('=')) {
        this.skipWs();
        if (this.peek() === '"') {
          const start = this.pos;
          this.quoted();
          value = this.text.slice(start, this.pos);
        } else {
          value = this.readWhile(GEN_VALUE_CHAR_RE);
          if (value === '') this.fail('empty parameter value');
        }
      }
      params[name] = value;
    }
  }
}

/**
 * Splits a header value on the commas that separate list elements (RFC 3261 §7.3.1), leaving
 * commas inside quoted strings and <...> alone. Empty elements are dropped.
 */
export function splitList(value: string): string[] {
  const parts: string[] = [];
  let inQuotes = false;
  let inAngle = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charAt(i);
    if (inQuotes) {
      if (c === '\\') i++;
      else if (c === '"') inQuotes = false;
    } else if (c === '"') inQuotes = true;
    else if (c === '<') inAngle = true;
    else if (c === '>') inAngle = false;
    else if (c === ',' && !inAngle) {
      parts.push(value.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(value.slice(start));
  return parts.map(trimLws).filter((p) => p !== '');
}

/** Trims SP and HTAB only: String.prototype.trim would also eat U+FEFF and other valid text. */
export function trimLws(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isWsp(text.charCodeAt(start))) start++;
  while (end > start && isWsp(text.charCodeAt(end - 1))) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

function isWsp(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

/** Formats parameters back into `;name=value` form. */
export function formatParams(params: Params): string {
  let out = '';
  for (const [name, value] of Object.entries(params)) out += value === null ? `;${name}` : `;${name}=${value}`;
  return out;
}
