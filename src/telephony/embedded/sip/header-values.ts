/** Scalar header values (RFC 3261 §20.16 CSeq, §20.8 Call-ID, §20.22 Max-Forwards...). */
import { SipParseError } from './errors.js';
import { Scanner } from './grammar.js';

export interface CSeq {
  seq: number;
  method: string;
}

/** "The sequence number MUST be expressible as a 32-bit unsigned integer and MUST be less than 2**31." (§8.1.1.5) */
const MAX_CSEQ = 2 ** 31 - 1;

/** CSeq = 1*DIGIT LWS Method */
export function parseCSeq(value: string): CSeq {
  const sc = new Scanner(value, 'CSeq');
  sc.skipWs();
  const digits = sc.digits('non-numeric sequence number');
  if (digits.replace(/^0+(?=.)/, '').length > 10 || Number(digits) > MAX_CSEQ) {
    sc.fail('sequence number out of range');
  }
  if (!sc.skipWs()) sc.fail('expected space before method');
  const method = sc.token('bad method');
  sc.skipWs();
  if (!sc.done) sc.fail('text after method');
  return { seq: Number(digits), method };
}

/** callid = word [ "@" word ] */
const CALL_ID_RE = /^[A-Za-z0-9\-.!%*_+`'~()<>:\\"/[\]?{}]+(?:@[A-Za-z0-9\-.!%*_+`'~()<>:\\"/[\]?{}]+)?$/;

export function isValidCallId(value: string): boolean {
  return CALL_ID_RE.test(value);
}

/** A 1*DIGIT value within [0, max]; leading zeros allowed ("0068" is 68). */
export function parseBoundedInteger(value: string, max: number, what: string): number {
  if (!/^[0-9]+$/.test(value)) throw new SipParseError(`bad ${what}`);
  const trimmed = value.replace(/^0+(?=.)/, '');
  if (trimmed.length > 15 || Number(trimmed) > max) throw new SipParseError(`${what} out of range`);
  return Number(trimmed);
}

/** Max-Forwards = 1*DIGIT, "an integer in the range 0-255" (§20.22). */
export function parseMaxForwards(value: string): number {
  return parseBoundedInteger(value, 255, 'Max-Forwards');
}
