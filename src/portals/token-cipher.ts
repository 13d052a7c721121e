import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { AppConfig } from '../config/app-config';
import { UndecryptableTokenError } from './token-vault.error';

const FORMAT_VERSION = 'v1';
const KEY_BYTES = 32;
const IV_BYTES = 12;
/** Where a development key lives when TOKEN_ENCRYPTION_KEY is not set (never in production). */
export const DEVELOPMENT_KEY_FILE = 'token-encryption.key';

/** A key's public name: the first 8 hex characters of its SHA-256, so no registry of ids is needed. */
export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

/**
 * AES-256-GCM for tokens at rest. A ciphertext reads `v1:<keyId>:<iv>:<tag>:<data>` (base64 parts),
 * so after a key rotation old rows still name the key that opens them. Each ciphertext is bound to
 * its place (`context`, e.g. "<memberId>:refresh"): one copied into another row or column fails to
 * decrypt instead of handing one portal's token to another.
 */
export class TokenCipher {
  private readonly keys = new Map<string, Buffer>();
  readonly currentKeyId: string;

  constructor(currentKey: Buffer, oldKeys: readonly Buffer[] = []) {
    for (const key of [currentKey, ...oldKeys]) {
      if (key.length !== KEY_BYTES) throw new Error(`token keys must be ${KEY_BYTES} bytes`);
      this.keys.set(keyIdOf(key), key);
    }
    this.currentKeyId = keyIdOf(currentKey);
  }

  /** A key for another purpose (e.g. signing sessions), derived from the current key. */
  deriveKey(purpose: string): Buffer {
    return createHmac('sha256', this.keys.get(this.currentKeyId)!).update(purpose).digest();
  }

  encrypt(plaintext: string, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.currentKeyId)!, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [
      FORMAT_VERSION,
      this.currentKeyId,
      iv.toString('base64'),
      cipher.getAuthTag().toString('base64'),
      data.toString('base64'),
    ].join(':');
  }

  decrypt(ciphertext: string, context: string): string {
    const parts = ciphertext.split(':');
    if (parts.length !== 5 || parts[0] !== FORMAT_VERSION) {
      throw new UndecryptableTokenError('unknown ciphertext format');
    }
    const [, keyId, iv, tag, data] = parts;
    const key = this.keys.get(keyId);
    if (!key) {
      throw new UndecryptableTokenError(
        `key ${keyId} is neither TOKEN_ENCRYPTION_KEY nor in TOKEN_ENCRYPTION_OLD_KEYS`,
      );
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64'));
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(Buffer.from(tag, 'base64'));
      return Buffer.concat([
        decipher.update(Buffer.from(data, 'base64')),
        decipher.final(),
      ]).toString('utf8');
    } catch {
      throw new UndecryptableTokenError('authentication failed (altered or misplaced ciphertext)');
    }
  }

  /** The key a ciphertext was written with (the rotation command re-encrypts the others). */
  static keyIdOfCiphertext(ciphertext: string): string | undefined {
    const parts = ciphertext.split(':');
    return parts.length === 5 ? parts[1] : undefined;
  }

  /**
   * TOKEN_ENCRYPTION_KEY (plus TOKEN_ENCRYPTION_OLD_KEYS for reading). Without it, outside
   * production only, a random key is created once under DATA_DIR and reused, with a warning: tokens
   * stored that way are only as safe as that directory.
   */
  static fromConfig(config: AppConfig, log: Logger): TokenCipher {
    const oldKeys = config.tokenEncryption.oldKeys.map((key) => Buffer.from(key, 'base64'));
    if (config.tokenEncryption.key) {
      return new TokenCipher(Buffer.from(config.tokenEncryption.key, 'base64'), oldKeys);
    }
    if (config.env === 'production') {
      throw new Error('TOKEN_ENCRYPTION_KEY is required when NODE_ENV=production');
    }
    const keyFile = path.resolve(config.database.dataDir, DEVELOPMENT_KEY_FILE);
    const key = readOrCreateKeyFile(keyFile);
    log.warn(
      { keyFile, keyId: keyIdOf(key) },
      'TOKEN_ENCRYPTION_KEY is not set: using a development key kept in DATA_DIR; set TOKEN_ENCRYPTION_KEY in production',
    );
    return new TokenCipher(key, oldKeys);
  }
}

function readOrCreateKeyFile(keyFile: string): Buffer {
  mkdirSync(path.dirname(keyFile), { recursive: true });
  // Written aside and linked into place: of two processes starting together, one key wins and
  // the other reads it whole, never half-written.
  const draft = `${keyFile}.${process.pid}.tmp`;
  writeFileSync(draft, `${randomBytes(KEY_BYTES).toString('base64')}\n`, { mode: 0o600 });
  try {
    linkSync(draft, keyFile);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    unlinkSync(draft);
  }
  const key = Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'base64');
  if (key.length !== KEY_BYTES) {
    throw new Error(`${keyFile} does not hold a base64 key of ${KEY_BYTES} bytes`);
  }
  return key;
}
