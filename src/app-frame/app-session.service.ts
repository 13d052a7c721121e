import { Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { TokenCipher } from '../portals/token-cipher';
import { AppSessionSigner } from './app-session';

/**
 * The signer with APP_SESSION_KEY, or, when that is unset, a key derived from the current token
 * encryption key (HMAC-SHA256 of the purpose "app-session"): rotating that key ends open sessions,
 * which live an hour at most.
 */
@Injectable()
export class AppSessionService extends AppSessionSigner {
  constructor(config: AppConfig, cipher: TokenCipher) {
    super(
      config.appFrame.sessionKey
        ? Buffer.from(config.appFrame.sessionKey, 'base64')
        : cipher.deriveKey('app-session'),
    );
  }
}
