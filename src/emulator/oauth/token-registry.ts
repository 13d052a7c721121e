import type { Clock } from '../clock';
import { randomLowercaseAlphanumerics } from '../random-identifiers';

/** Whom a token speaks for. */
export interface TokenGrant {
  readonly memberId: string;
  readonly userId: number;
  /** Which installation of the app the token belongs to: tokens outlive nothing but their install. */
  readonly installation: number;
  readonly scope: string;
}

export interface AccessTokenRecord extends TokenGrant {
  readonly token: string;
  expiresAtMs: number;
  /** Set when the refresh token issued with it was used: the old pair dies together (contract §6). */
  revoked: boolean;
}

interface RefreshTokenRecord extends TokenGrant {
  readonly token: string;
  expiresAtMs: number;
  used: boolean;
  readonly issuedWith: AccessTokenRecord;
}

export interface IssuedTokens {
  readonly accessToken: string;
  readonly refreshToken: string;
  readonly expiresAtMs: number;
  readonly grant: TokenGrant;
}

export type RefreshTokenState =
  | { readonly usable: true; readonly grant: TokenGrant }
  | {
      readonly usable: false;
      readonly reason: 'unknown' | 'used' | 'expired';
      readonly grant?: TokenGrant;
    };

export interface TokenLifetimes {
  readonly accessSeconds: number;
  readonly refreshSeconds: number;
}

/** Authorization codes live 30 s (contract §6). */
const AUTHORIZATION_CODE_LIFETIME_MS = 30_000;

/** Every token the OAuth server ever issued, with single-use rotating refresh tokens. */
export class TokenRegistry {
  private readonly accessTokens = new Map<string, AccessTokenRecord>();
  private readonly refreshTokens = new Map<string, RefreshTokenRecord>();
  private readonly authorizationCodes = new Map<
    string,
    { grant: TokenGrant; expiresAtMs: number }
  >();
  private readonly tokensByPortal = new Map<
    string,
    { access: AccessTokenRecord[]; refresh: RefreshTokenRecord[] }
  >();

  constructor(
    private readonly clock: Clock,
    private readonly lifetimes: TokenLifetimes,
  ) {}

  get accessLifetimeSeconds(): number {
    return this.lifetimes.accessSeconds;
  }

  /** A fresh, independent chain: an install, an event's auth block or a code exchange. */
  issue(grant: TokenGrant): IssuedTokens {
    const now = this.clock.now();
    const owner: TokenGrant = {
      memberId: grant.memberId,
      userId: grant.userId,
      installation: grant.installation,
      scope: grant.scope,
    };
    const access: AccessTokenRecord = {
      ...owner,
      token: randomLowercaseAlphanumerics(32),
      expiresAtMs: now + this.lifetimes.accessSeconds * 1000,
      revoked: false,
    };
    const refresh: RefreshTokenRecord = {
      ...owner,
      token: randomLowercaseAlphanumerics(32),
      expiresAtMs: now + this.lifetimes.refreshSeconds * 1000,
      used: false,
      issuedWith: access,
    };
    this.accessTokens.set(access.token, access);
    this.refreshTokens.set(refresh.token, refresh);
    const portalTokens = this.portalTokens(grant.memberId);
    portalTokens.access.push(access);
    portalTokens.refresh.push(refresh);
    return {
      accessToken: access.token,
      refreshToken: refresh.token,
      expiresAtMs: access.expiresAtMs,
      grant: owner,
    };
  }

  findAccessToken(token: string): AccessTokenRecord | undefined {
    return this.accessTokens.get(token);
  }

  inspectRefreshToken(token: string): RefreshTokenState {
    const record = this.refreshTokens.get(token);
    if (record === undefined) return { usable: false, reason: 'unknown' };
    if (record.used) return { usable: false, reason: 'used', grant: record };
    if (this.clock.now() >= record.expiresAtMs) {
      return { usable: false, reason: 'expired', grant: record };
    }
    return { usable: true, grant: record };
  }

  /** Spends a usable refresh token: it and the access token issued with it die, a new pair is born. */
  rotate(token: string): IssuedTokens {
    const record = this.refreshTokens.get(token);
    if (record === undefined || record.used)
      throw new Error('rotate() needs a usable refresh token');
    record.used = true;
    record.issuedWith.revoked = true;
    return this.issue(record);
  }

  issueAuthorizationCode(grant: TokenGrant): string {
    const code = randomLowercaseAlphanumerics(32);
    this.authorizationCodes.set(code, {
      grant,
      expiresAtMs: this.clock.now() + AUTHORIZATION_CODE_LIFETIME_MS,
    });
    return code;
  }

  /** Codes are single-use; an expired or spent code gives nothing. */
  redeemAuthorizationCode(code: string): TokenGrant | undefined {
    const entry = this.authorizationCodes.get(code);
    this.authorizationCodes.delete(code);
    if (entry === undefined || this.clock.now() >= entry.expiresAtMs) return undefined;
    return entry.grant;
  }

  /** Makes a portal's live access tokens (and optionally refresh tokens) expired as of now. */
  expirePortalTokens(
    memberId: string,
    options: { refresh: boolean },
  ): { accessTokens: number; refreshTokens: number } {
    const now = this.clock.now();
    const portalTokens = this.portalTokens(memberId);
    let accessTokens = 0;
    let refreshTokens = 0;
    for (const record of portalTokens.access) {
      if (record.expiresAtMs > now) {
        record.expiresAtMs = now;
        accessTokens++;
      }
    }
    if (options.refresh) {
      for (const record of portalTokens.refresh) {
        if (record.expiresAtMs > now) {
          record.expiresAtMs = now;
          refreshTokens++;
        }
      }
    }
    return { accessTokens, refreshTokens };
  }

  issuedTokens(memberId?: string): { accessTokens: string[]; refreshTokens: string[] } {
    const portals =
      memberId === undefined
        ? [...this.tokensByPortal.values()]
        : [this.tokensByPortal.get(memberId) ?? { access: [], refresh: [] }];
    return {
      accessTokens: portals.flatMap((tokens) => tokens.access.map((record) => record.token)),
      refreshTokens: portals.flatMap((tokens) => tokens.refresh.map((record) => record.token)),
    };
  }

  private portalTokens(memberId: string): {
    access: AccessTokenRecord[];
    refresh: RefreshTokenRecord[];
  } {
    let tokens = this.tokensByPortal.get(memberId);
    if (tokens === undefined) {
      tokens = { access: [], refresh: [] };
      this.tokensByPortal.set(memberId, tokens);
    }
    return tokens;
  }
}
