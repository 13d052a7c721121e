import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { Bitrix24ApiError, OAuthError, PortalNotActiveError } from '../bitrix24/bitrix24-api.error';
import { Bitrix24Client } from '../bitrix24/bitrix24.client';
import { AppLogger } from '../logging/app-logger';

/**
 * What Bitrix24 says of an ONAPPUNINSTALL: `gone` (the stored chain is refused as uninstalled),
 * `installed` (app.info still answers: the event is forged), `no_chain` (the portal holds no
 * usable chain to ask with, so there is nothing a forger could take away) or `unknown` (Bitrix24
 * did not answer).
 */
export type UninstallVerdict = 'gone' | 'installed' | 'no_chain' | 'unknown';

/**
 * Confirms an uninstall with Bitrix24 itself. Bitrix24 puts the application_token into every
 * app-frame POST, so any user of the portal can read it: the token proves "someone from this
 * portal", not "Bitrix24". The portal's own chain does: once the app is gone, Bitrix24 refuses it
 * (APPLICATION_NOT_FOUND for the access token, invalid_grant for the refresh token).
 */
@Injectable()
export class UninstallConfirmation {
  private readonly log: Logger;

  constructor(
    private readonly bitrix24: Bitrix24Client,
    appLogger: AppLogger,
  ) {
    this.log = appLogger.child('uninstall');
  }

  async verdict(memberId: string): Promise<UninstallVerdict> {
    try {
      await this.bitrix24.operationsFor(memberId).appInfo();
      return 'installed';
    } catch (error) {
      if (error instanceof PortalNotActiveError) return 'no_chain';
      // Unpaid is not uninstalled: the app is still there.
      if (error instanceof Bitrix24ApiError && error.bitrixCode === 'PAYMENT_REQUIRED') {
        return 'installed';
      }
      // The chain of a removed app: its refresh is refused as well as its access token.
      if (error instanceof OAuthError && error.category !== 'retryable') return 'gone';
      if (error instanceof Bitrix24ApiError && error.category === 'portal_gone') return 'gone';
      this.log.warn(
        {
          memberId,
          bitrixCode: error instanceof Bitrix24ApiError ? error.bitrixCode : undefined,
          err: error instanceof Bitrix24ApiError ? undefined : error,
        },
        'uninstall could not be confirmed: Bitrix24 did not answer app.info',
      );
      return 'unknown';
    }
  }
}
