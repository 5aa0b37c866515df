/**
 * Web passwords of portal and operator accounts: argon2id over HMAC-SHA256 with a pepper of
 * their own, derived from PIN_PEPPER (so a password equal to someone's access code never gives
 * the same argon2 input, and neither hash can be checked offline without the pepper).
 */
import { createHmac } from 'node:crypto';
import { AccessCodeHasher } from './access-code-hasher.js';

export const PASSWORD_MIN_LENGTH = 10;
export const PASSWORD_MAX_LENGTH = 200;

export function createPasswordHasher(pinPepper: Buffer): AccessCodeHasher {
  return new AccessCodeHasher(createHmac('sha256', pinPepper).update('vmaccess portal password v1').digest());
}

/** Why a new password is refused, or null. */
export function passwordProblem(password: string): string | null {
  if (password.length < PASSWORD_MIN_LENGTH) return `a password needs at least ${PASSWORD_MIN_LENGTH} characters`;
  if (password.length > PASSWORD_MAX_LENGTH) return `a password has at most ${PASSWORD_MAX_LENGTH} characters`;
  return null;
}
