import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/**
 * Paths pino censors before a line is written. Digits a caller enters (an access code, a
 * mailbox number typed in, a DTMF event) must never reach a log line; the code never passes
 * them to the logger on purpose, and this list is the safety net should a future change do so.
 */
export const REDACTED_PATHS: string[] = [
  'accessCode', '*.accessCode', 'newAccessCode', '*.newAccessCode',
  'digit', '*.digit', 'digits', '*.digits', 'buffer', '*.buffer',
  'pin', '*.pin', 'password', '*.password',
  'body', '*.body', 'sdp', '*.sdp', 'raw', '*.raw',
  'authorization', '*.authorization', 'token', '*.token',
];

export function createLogger(level: LevelWithSilent = 'info', destination?: NodeJS.WritableStream): Logger {
  const options = {
    level,
    base: { service: 'vmaccess' },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  };
  return destination ? pino(options, destination as pino.DestinationStream) : pino(options);
}

/** A logger that drops everything: for unit tests and pure code paths. */
export const silentLogger: Logger = pino({ level: 'silent' });
