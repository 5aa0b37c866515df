/** MESSAGE_AUDIO_STORE: where message audio lives (files by default, or bytea in the database). */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/config.js';

describe('MESSAGE_AUDIO_STORE', () => {
  it('defaults to files; takes file or database', () => {
    expect(loadConfig({}).messageAudioStore).toBe('file');
    expect(loadConfig({ MESSAGE_AUDIO_STORE: 'file' }).messageAudioStore).toBe('file');
    expect(loadConfig({ MESSAGE_AUDIO_STORE: ' database ' }).messageAudioStore).toBe('database');
  });

  it('anything else stops the server with one line naming the variable and the choices', () => {
    for (const bad of ['db', 'postgres', 'FILE', 's3']) {
      expect(() => loadConfig({ MESSAGE_AUDIO_STORE: bad })).toThrow(ConfigError);
      expect(() => loadConfig({ MESSAGE_AUDIO_STORE: bad })).toThrow(`MESSAGE_AUDIO_STORE: expected 'file' or 'database', got '${bad}'`);
    }
  });
});
