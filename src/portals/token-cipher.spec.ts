import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../config/app-config';
import { createPinoLogger } from '../logging/app-logger';
import { DEVELOPMENT_KEY_FILE, keyIdOf, TokenCipher } from './token-cipher';
import { UndecryptableTokenError } from './token-vault.error';

const KEY_A = Buffer.alloc(32, 1);
const KEY_B = Buffer.alloc(32, 2);
const TOKEN = 'access-token-4f1c9a7e2b';

function capturingLogger(lines: string[]) {
  return createPinoLogger(
    'debug',
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(chunk.toString('utf8'));
        callback();
      },
    }),
  );
}

describe('TokenCipher', () => {
  it('round-trips a token and never leaves it readable in the ciphertext', () => {
    const cipher = new TokenCipher(KEY_A);
    const ciphertext = cipher.encrypt(TOKEN, 'member-1:access');
    expect(ciphertext).not.toContain(TOKEN);
    expect(Buffer.from(ciphertext).toString('base64')).not.toContain(
      Buffer.from(TOKEN).toString('base64'),
    );
    expect(cipher.decrypt(ciphertext, 'member-1:access')).toBe(TOKEN);
  });

  it('tags each ciphertext with the id of its key: the first 8 hex chars of its SHA-256', () => {
    const cipher = new TokenCipher(KEY_A);
    const ciphertext = cipher.encrypt(TOKEN, 'ctx');
    expect(keyIdOf(KEY_A)).toMatch(/^[0-9a-f]{8}$/);
    expect(cipher.currentKeyId).toBe(keyIdOf(KEY_A));
    expect(ciphertext.split(':').slice(0, 2)).toEqual(['v1', keyIdOf(KEY_A)]);
    expect(TokenCipher.keyIdOfCiphertext(ciphertext)).toBe(keyIdOf(KEY_A));
  });

  it('uses a fresh IV every time: equal tokens give different ciphertexts', () => {
    const cipher = new TokenCipher(KEY_A);
    expect(cipher.encrypt(TOKEN, 'ctx')).not.toBe(cipher.encrypt(TOKEN, 'ctx'));
  });

  it('after a rotation decrypts rows of the old key and writes with the new one', () => {
    const before = new TokenCipher(KEY_A);
    const oldRow = before.encrypt(TOKEN, 'm:refresh');
    const after = new TokenCipher(KEY_B, [KEY_A]);
    expect(after.decrypt(oldRow, 'm:refresh')).toBe(TOKEN);
    expect(TokenCipher.keyIdOfCiphertext(after.encrypt(TOKEN, 'm:refresh'))).toBe(keyIdOf(KEY_B));
  });

  it('refuses a ciphertext whose key is not configured, naming the key id but not the token', () => {
    const oldRow = new TokenCipher(KEY_A).encrypt(TOKEN, 'ctx');
    const withoutOldKey = new TokenCipher(KEY_B);
    expect(() => withoutOldKey.decrypt(oldRow, 'ctx')).toThrow(UndecryptableTokenError);
    expect(() => withoutOldKey.decrypt(oldRow, 'ctx')).toThrow(keyIdOf(KEY_A));
  });

  it('refuses a ciphertext moved to another portal or column, or altered', () => {
    const cipher = new TokenCipher(KEY_A);
    const ciphertext = cipher.encrypt(TOKEN, 'member-1:access');
    expect(() => cipher.decrypt(ciphertext, 'member-2:access')).toThrow(UndecryptableTokenError);
    expect(() => cipher.decrypt(ciphertext, 'member-1:refresh')).toThrow(UndecryptableTokenError);
    const parts = ciphertext.split(':');
    const data = Buffer.from(parts[4], 'base64');
    data[0] ^= 1;
    parts[4] = data.toString('base64');
    expect(() => cipher.decrypt(parts.join(':'), 'member-1:access')).toThrow(
      UndecryptableTokenError,
    );
    expect(() => cipher.decrypt('plaintext-token', 'member-1:access')).toThrow(
      /unknown ciphertext format/,
    );
  });

  it('rejects keys that are not 32 bytes', () => {
    expect(() => new TokenCipher(randomBytes(16))).toThrow(/32 bytes/);
  });

  describe('fromConfig', () => {
    const base = { BITRIX24_CLIENT_ID: 'app', BITRIX24_CLIENT_SECRET: 'secret' };

    it('uses TOKEN_ENCRYPTION_KEY and reads with TOKEN_ENCRYPTION_OLD_KEYS', () => {
      const config = loadConfig({
        ...base,
        TOKEN_ENCRYPTION_KEY: KEY_B.toString('base64'),
        TOKEN_ENCRYPTION_OLD_KEYS: `${KEY_A.toString('base64')},${Buffer.alloc(32, 3).toString('base64')}`,
      });
      const cipher = TokenCipher.fromConfig(config, capturingLogger([]));
      expect(cipher.currentKeyId).toBe(keyIdOf(KEY_B));
      expect(cipher.decrypt(new TokenCipher(KEY_A).encrypt(TOKEN, 'c'), 'c')).toBe(TOKEN);
    });

    it('without a key outside production, creates a key file under DATA_DIR once, reuses it and warns', () => {
      const dataDir = mkdtempSync(path.join(tmpdir(), 'b24-cipher-'));
      const config = loadConfig({ ...base, DATA_DIR: dataDir, NODE_ENV: 'development' });
      const lines: string[] = [];
      const first = TokenCipher.fromConfig(config, capturingLogger(lines));
      const ciphertext = first.encrypt(TOKEN, 'c');
      const second = TokenCipher.fromConfig(config, capturingLogger(lines));
      expect(second.currentKeyId).toBe(first.currentKeyId);
      expect(second.decrypt(ciphertext, 'c')).toBe(TOKEN);
      const keyFile = path.join(dataDir, DEVELOPMENT_KEY_FILE);
      expect(Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'base64')).toHaveLength(32);
      expect(statSync(keyFile).mode & 0o077).toBe(0);
      expect(lines.join('')).toContain('TOKEN_ENCRYPTION_KEY is not set');
      expect(lines.join('')).toContain('"level":"warn"');
    });
  });
});
