import { DomainError } from '../errors/domain-error';

/** The request does not carry what an installation needs (it did not come from Bitrix24's installer). */
export class InstallRequestInvalidError extends DomainError {
  readonly kind = 'invalid_input';

  constructor(message: string) {
    super('install_request_invalid', message);
  }
}

/** Why an installation is not confirmed: the OAuth server's answer, or the installer's rights. */
export type NotConfirmedReason =
  | 'refresh_token_rejected'
  | 'payment_required'
  | 'member_mismatch'
  | 'incomplete_answer'
  | 'installer_not_admin'
  | 'installer_rights_refused';

/** The OAuth server (or the portal, asked about the installer) did not vouch for it: nothing was stored. */
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
    code:
      'oauth_unavailable' | 'oauth_client_rejected' | 'portal_unavailable' | 'event_binding_failed',
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

/** Installation confirmations are bounded; the refusal says when to come back (Retry-After). */
export abstract class InstallationThrottledError extends DomainError {
  constructor(
    code: string,
    message: string,
    override readonly retryAfterSeconds: number,
  ) {
    super(code, message);
  }
}

/** As many confirmations as this instance runs at once are in flight, and none freed up in time. */
export class InstallationBusyError extends InstallationThrottledError {
  readonly kind = 'unavailable';

  constructor(retryAfterSeconds: number) {
    super(
      'installation_busy',
      'Too many installations are being confirmed right now. Please try again in a few seconds.',
      retryAfterSeconds,
    );
  }
}

/** This client address started too many confirmations lately. */
export class InstallationRateLimitedError extends InstallationThrottledError {
  readonly kind = 'rate_limited';

  constructor(retryAfterSeconds: number) {
    super(
      'installation_rate_limited',
      `Too many installation attempts from your address. Please try again in ${retryAfterSeconds} s.`,
      retryAfterSeconds,
    );
  }
}
