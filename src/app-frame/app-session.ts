import { createHmac, timingSafeEqual } from 'node:crypto';

/** Who the bearer of a session token is, as the frame that created it proved. */
export interface AppSession {
  readonly memberId: string;
  readonly userId: number;
  readonly isAdmin: boolean;
  /** The user's name as the portal gave it (user.current NAME and LAST_NAME). */
  readonly userName: string;
  readonly placement: string;
  readonly placementOptions: Record<string, unknown>;
  /** Unix seconds. */
  readonly expiresAt: number;
}

/** A session never outlives an hour, nor the access token of the frame that made it. */
export const MAX_SESSION_SECONDS = 3600;
const VERSION = 's1';

/**
 * Session tokens for the vendor's UI: `s1.<base64url JSON>.<base64url HMAC-SHA256>`. Stateless, so
 * every replica with the same key accepts them; no cookie (browsers block them in iframes).
 */
export class AppSessionSigner {
  constructor(
    private readonly key: Buffer,
    private readonly now: () => number = () => Date.now(),
  ) {}

  sign(
    session: Omit<AppSession, 'expiresAt'>,
    lifetimeSeconds: number,
  ): AppSession & { token: string } {
    const seconds = Math.max(1, Math.min(lifetimeSeconds, MAX_SESSION_SECONDS));
    const full: AppSession = { ...session, expiresAt: Math.floor(this.now() / 1000) + seconds };
    const payload = Buffer.from(
      JSON.stringify({
        m: full.memberId,
        u: full.userId,
        a: full.isAdmin,
        n: full.userName,
        p: full.placement,
        o: full.placementOptions,
        e: full.expiresAt,
      }),
    ).toString('base64url');
    return { ...full, token: `${VERSION}.${payload}.${this.mac(payload)}` };
  }

  /** null for anything not signed by this key, malformed, or expired. */
  verify(token: string): AppSession | null {
    const parts = token.split('.');
    if (parts.length !== 3 || parts[0] !== VERSION) return null;
    const [, payload, mac] = parts;
    const expected = Buffer.from(this.mac(payload), 'base64url');
    const given = Buffer.from(mac, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    let claims: Record<string, unknown>;
    try {
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<
        string,
        unknown
      >;
    } catch {
      return null;
    }
    const { m, u, a, n, p, o, e } = claims;
    if (
      typeof m !== 'string' ||
      typeof u !== 'number' ||
      typeof a !== 'boolean' ||
      typeof n !== 'string' ||
      typeof p !== 'string' ||
      typeof o !== 'object' ||
      o === null ||
      typeof e !== 'number'
    ) {
      return null;
    }
    if (e * 1000 <= this.now()) return null;
    return {
      memberId: m,
      userId: u,
      isAdmin: a,
      userName: n,
      placement: p,
      placementOptions: o as Record<string, unknown>,
      expiresAt: e,
    };
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.key).update(`${VERSION}.${payload}`).digest('base64url');
  }
}
