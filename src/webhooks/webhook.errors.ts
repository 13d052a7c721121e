import { DomainError } from '../errors/domain-error';

export enum WebhookErrorCode {
  MalformedEvent = 'malformed_event',
  EventNotVerified = 'event_not_verified',
}

/** The body is not a Bitrix24 event notification (wrong shape, wrong types, hostile values). */
export class MalformedEventError extends DomainError {
  readonly kind = 'invalid_input';

  constructor(message: string) {
    super(WebhookErrorCode.MalformedEvent, message);
  }
}

/**
 * The event could not be verified. One message for a wrong token, an unknown member_id and a portal
 * that is not active, so the answer reveals nothing about which portals exist.
 */
export class EventNotVerifiedError extends DomainError {
  readonly kind = 'unauthenticated';

  constructor() {
    super(WebhookErrorCode.EventNotVerified, 'The event could not be verified');
  }
}
