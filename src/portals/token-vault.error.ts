import { DomainError } from '../errors/domain-error';

export enum TokenVaultErrorCode {
  UndecryptableToken = 'token_undecryptable',
  MemberIdMismatch = 'token_member_id_mismatch',
}

/**
 * A stored token cannot be decrypted: its key is not configured (TOKEN_ENCRYPTION_KEY was changed
 * without listing the old one in TOKEN_ENCRYPTION_OLD_KEYS) or the ciphertext was altered.
 */
export class UndecryptableTokenError extends DomainError {
  readonly kind = 'unavailable';

  constructor(reason: string) {
    super(TokenVaultErrorCode.UndecryptableToken, `A stored token cannot be decrypted: ${reason}`);
  }
}

/** The OAuth server answered a refresh with another portal's tokens: nothing is stored. */
export class MemberIdMismatchError extends DomainError {
  readonly kind = 'conflict';

  constructor(expected: string, received: string) {
    super(
      TokenVaultErrorCode.MemberIdMismatch,
      `The OAuth server answered a refresh for portal ${expected} with tokens of portal ${received}`,
    );
  }
}
