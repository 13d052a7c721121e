import { randomBytes } from 'node:crypto';

const LOWERCASE_ALPHANUMERICS = 'abcdefghijklmnopqrstuvwxyz0123456789';

/**
 * The shape of Bitrix's `Random::getString(32)`: process ids and OAuth tokens look like
 * `yh3gu929sf0d32lsfysqas2y1hlpp09q`. The slight modulo bias does not matter for a fake.
 */
export function randomLowercaseAlphanumerics(length: number): string {
  let text = '';
  for (const byte of randomBytes(length)) {
    text += LOWERCASE_ALPHANUMERICS[byte % LOWERCASE_ALPHANUMERICS.length];
  }
  return text;
}

/** member_id and application_token are md5-shaped: 32 hex digits. */
export function randomMd5Shaped(): string {
  return randomBytes(16).toString('hex');
}
