import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { TokenCipher } from '../portals/token-cipher';
import type { FrameRequest } from './frame-request';

export interface StoredUserToken {
  readonly accessToken: string;
  readonly refreshToken: string | null;
  readonly accessExpiresAt: Date;
}

/**
 * Each user's own chain, as the verified frame carried it, encrypted in `portal_user_tokens`. It
 * never touches `portal_tokens`: a plain user's token must not replace the portal's chain.
 */
@Injectable()
export class UserTokenStore {
  constructor(
    private readonly dataSource: DataSource,
    private readonly cipher: TokenCipher,
  ) {}

  async store(frame: FrameRequest, userId: number, isAdmin = false): Promise<void> {
    const context = `${frame.memberId}:user:${userId}`;
    const expiresAt = new Date(Date.now() + (frame.authExpiresSeconds || 3600) * 1000);
    await this.dataSource.query(
      `INSERT INTO "portal_user_tokens"
         ("member_id", "user_id", "access_token", "refresh_token", "access_expires_at", "is_admin", "key_id", "updated_at")
       VALUES ($1, $2, $3, $4, $5, $6, $7, now())
       ON CONFLICT ("member_id", "user_id") DO UPDATE SET
         "access_token" = EXCLUDED."access_token", "refresh_token" = EXCLUDED."refresh_token",
         "access_expires_at" = EXCLUDED."access_expires_at", "is_admin" = EXCLUDED."is_admin",
         "key_id" = EXCLUDED."key_id", "updated_at" = now()`,
      [
        frame.memberId,
        userId,
        this.cipher.encrypt(frame.accessToken, `${context}:access`),
        frame.refreshToken === null
          ? null
          : this.cipher.encrypt(frame.refreshToken, `${context}:refresh`),
        expiresAt,
        isAdmin,
        this.cipher.currentKeyId,
      ],
    );
  }

  /** The user's stored chain, decrypted; null when the user never opened the app. */
  async find(memberId: string, userId: number): Promise<StoredUserToken | null> {
    const rows: {
      access_token: string;
      refresh_token: string | null;
      access_expires_at: Date;
    }[] = await this.dataSource.query(
      `SELECT "access_token", "refresh_token", "access_expires_at" FROM "portal_user_tokens"
       WHERE "member_id" = $1 AND "user_id" = $2`,
      [memberId, userId],
    );
    const row = rows[0];
    if (!row) return null;
    const context = `${memberId}:user:${userId}`;
    return {
      accessToken: this.cipher.decrypt(row.access_token, `${context}:access`),
      refreshToken:
        row.refresh_token === null
          ? null
          : this.cipher.decrypt(row.refresh_token, `${context}:refresh`),
      accessExpiresAt: row.access_expires_at,
    };
  }
}
