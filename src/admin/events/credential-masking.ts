/**
 * Keys whose values are credentials in Bitrix24 payloads (the `auth` block of a webhook, install
 * form fields). Stored event data should never hold them, but the admin API is where a leak would
 * surface, so it masks them on the way out whatever the inbox kept.
 */
const CREDENTIAL_KEYS = new Set([
  'auth',
  'access_token',
  'accesstoken',
  'refresh_token',
  'refreshtoken',
  'application_token',
  'applicationtoken',
  'auth_id',
  'refresh_id',
  'client_secret',
  'clientsecret',
  'password',
]);
const MAX_DEPTH = 64;
export const MASKED = '[redacted]';

/** A copy of a JSON value with every credential-named key's value replaced by MASKED. */
export function maskCredentials(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return MASKED;
  if (Array.isArray(value)) return value.map((item) => maskCredentials(item, depth + 1));
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [
      key,
      CREDENTIAL_KEYS.has(key.toLowerCase()) ? MASKED : maskCredentials(item, depth + 1),
    ]),
  );
}
