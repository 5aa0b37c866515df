/** Identifiers that must be unique in space and time (RFC 3261 §8.1.1.4, §8.1.1.7, §19.3). */
import { randomBytes } from 'node:crypto';
import { BRANCH_MAGIC_COOKIE } from './via.js';

/** A Via branch: the magic cookie then 96 random bits. */
export function newBranch(): string {
  return `${BRANCH_MAGIC_COOKIE}${randomBytes(12).toString('hex')}`;
}

/** A From/To tag: "at least 32 bits of randomness" (§19.3); we use 64. */
export function newTag(): string {
  return randomBytes(8).toString('hex');
}

export function newCallId(): string {
  return randomBytes(16).toString('hex');
}
