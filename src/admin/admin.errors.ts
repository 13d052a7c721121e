import { DomainError } from '../errors/domain-error';

/** Codes the admin API answers with, besides the shared validation code `bad_request`. */
export enum AdminErrorCode {
  AdminApiDisabled = 'admin_api_disabled',
  MissingBearerToken = 'missing_bearer_token',
  InvalidBearerToken = 'invalid_bearer_token',
  TooManyFailedAttempts = 'too_many_failed_attempts',
  InvalidCursor = 'invalid_cursor',
  InvalidFilter = 'invalid_filter',
  PortalNotFound = 'portal_not_found',
  EventNotFound = 'event_not_found',
}

/** ADMIN_TOKEN is not configured: the API exists but nobody may use it. */
export class AdminApiDisabledError extends DomainError {
  readonly kind = 'unavailable';

  constructor() {
    super(
      AdminErrorCode.AdminApiDisabled,
      'The admin API is disabled: set ADMIN_TOKEN (at least 32 characters) to enable it',
    );
  }
}

export class AdminUnauthenticatedError extends DomainError {
  readonly kind = 'unauthenticated';

  static missing(): AdminUnauthenticatedError {
    return new AdminUnauthenticatedError(
      AdminErrorCode.MissingBearerToken,
      'Send the admin token as "Authorization: Bearer <ADMIN_TOKEN>"',
    );
  }

  static invalid(): AdminUnauthenticatedError {
    return new AdminUnauthenticatedError(
      AdminErrorCode.InvalidBearerToken,
      'The admin bearer token is not valid',
    );
  }
}

export class TooManyFailedAttemptsError extends DomainError {
  readonly kind = 'rate_limited';

  constructor(override readonly retryAfterSeconds: number) {
    super(
      AdminErrorCode.TooManyFailedAttempts,
      `Too many failed admin authentication attempts; retry in ${retryAfterSeconds} s`,
    );
  }
}

export class InvalidCursorError extends DomainError {
  readonly kind = 'invalid_input';

  constructor(reason: string) {
    super(AdminErrorCode.InvalidCursor, `Invalid cursor: ${reason}`);
  }
}

export class InvalidFilterError extends DomainError {
  readonly kind = 'invalid_input';

  constructor(message: string) {
    super(AdminErrorCode.InvalidFilter, message);
  }
}

export class PortalNotFoundError extends DomainError {
  readonly kind = 'not_found';

  constructor(memberId: string) {
    super(AdminErrorCode.PortalNotFound, `No portal with member_id ${memberId}`);
  }
}

export class EventNotFoundError extends DomainError {
  readonly kind = 'not_found';

  constructor(id: string) {
    super(AdminErrorCode.EventNotFound, `No stored event with id ${id}`);
  }
}
