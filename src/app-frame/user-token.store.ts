import { Injectable } from '@nestjs/common';
import { UserTokenVault, type StoredUserToken } from '../portals/user-token-vault.service';
import type { FrameRequest } from './frame-request';

export type { StoredUserToken } from '../portals/user-token-vault.service';

/**
 * Stores each user's own chain as the verified frame carried it, through the user token vault
 * (`portal_user_tokens`, encrypted). It never touches `portal_tokens`: a plain user's token must not
 * replace the portal's chain.
 */
@Injectable()
export class UserTokenStore {
  constructor(private readonly vault: UserTokenVault) {}

  async store(frame: FrameRequest, userId: number, isAdmin = false): Promise<void> {
    await this.vault.store(
      frame.memberId,
      userId,
      {
        accessToken: frame.accessToken,
        refreshToken: frame.refreshToken,
        expiresInSeconds: frame.authExpiresSeconds,
      },
      isAdmin,
    );
  }

  /** The user's stored chain, decrypted; null when the user never opened the app. */
  find(memberId: string, userId: number): Promise<StoredUserToken | null> {
    return this.vault.find(memberId, userId);
  }
}
