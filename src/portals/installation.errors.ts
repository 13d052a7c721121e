import { DomainError } from '../errors/domain-error';

/** The request does not carry what an installation needs (it did not come from Bitrix24's installer). */
export class InstallRequestInvalidError extends DomainError {
  readonly kind = 'invalid_input';

  constructor(message: string) {
    super('install_request_invalid', message);
  }
}

/** Why the OAuth server's answer does not confirm an installation. */
export type NotConfirmedReason =
  'refresh_token_rejected' | 'payment_required' | 'member_mismatch' | 'incomplete_answer';

/** The OAuth server did not vouch for this installation: nothing was stored. */
export class InstallationNotConfirmedError extends DomainError {
  readonly kind = 'forbidden';

  constructor(
    readonly reason: NotConfirmedReason,
    message: string,
  ) {
    super('installation_not_confirmed', message);
  }
}

/** The installation could not be completed now (OAuth server or portal unreachable, our own setup wrong). */
export class InstallationUnavailableError extends DomainError {
  readonly kind = 'unavailable';

  constructor(
    code: 'oauth_unavailable' | 'oauth_client_rejected' | 'event_binding_failed',
    message: string,
  ) {
    super(code, message);
  }
}

/** Something else changed the portal (e.g. the stalled-install sweep) while this installation ran. */
export class InstallationSupersededError extends DomainError {
  readonly kind = 'conflict';

  constructor(memberId: string) {
    super(
      'installation_superseded',
      `The installation of portal ${memberId} was superseded while it ran; open the application again to retry.`,
    );
  }
}
