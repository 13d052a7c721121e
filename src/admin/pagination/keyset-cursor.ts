import { createHash } from 'node:crypto';
import { InvalidCursorError } from '../admin.errors';

const MAX_CURSOR_LENGTH = 512;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const CURSOR_VERSION = 1;

/**
 * An opaque keyset cursor: base64url of `{v, k, q}` where `k` is the last key of the page and `q`
 * fingerprints the query it belongs to (filters and order). A cursor is only valid for the query
 * that produced it; anything else — forged, truncated, reused with other filters — is a 400.
 */
export class KeysetCursor {
  /**
   * @param scope canonical description of the query (route, filters, order)
   * @param isValidKey what a valid key is (a pattern, or a check for bounds a pattern cannot
   *   express); checked before the key reaches SQL
   */
  constructor(
    private readonly scope: string,
    private readonly isValidKey: RegExp | ((key: string) => boolean),
  ) {}

  encode(key: string): string {
    return Buffer.from(
      JSON.stringify({ v: CURSOR_VERSION, k: key, q: this.fingerprint() }),
      'utf8',
    ).toString('base64url');
  }

  /** The key a cursor carries; throws InvalidCursorError for anything this query did not issue. */
  decode(cursor: string): string {
    if (cursor.length > MAX_CURSOR_LENGTH || !BASE64URL.test(cursor)) {
      throw new InvalidCursorError('not a cursor returned by this API');
    }
    let payload: unknown;
    try {
      payload = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    } catch {
      throw new InvalidCursorError('not a cursor returned by this API');
    }
    if (typeof payload !== 'object' || payload === null) {
      throw new InvalidCursorError('not a cursor returned by this API');
    }
    const { v, k, q } = payload as Record<string, unknown>;
    if (v !== CURSOR_VERSION || typeof k !== 'string' || typeof q !== 'string') {
      throw new InvalidCursorError('not a cursor returned by this API');
    }
    if (q !== this.fingerprint()) {
      throw new InvalidCursorError('it belongs to a query with other filters or order');
    }
    const valid =
      typeof this.isValidKey === 'function' ? this.isValidKey(k) : this.isValidKey.test(k);
    if (!valid) {
      throw new InvalidCursorError('not a cursor returned by this API');
    }
    return k;
  }

  private fingerprint(): string {
    return createHash('sha256').update(this.scope).digest('base64url').slice(0, 16);
  }
}
