import { DomainError } from '../errors/domain-error';

export enum InboxErrorCode {
  EventNotFound = 'event_not_found',
  InvalidEventId = 'invalid_event_id',
  EventInProgress = 'event_in_progress',
  InboxStopping = 'inbox_stopping',
  EventWaitingInLine = 'event_waiting_in_line',
  EventNotDiscardable = 'event_not_discardable',
}

export class StoredEventNotFoundError extends DomainError {
  readonly kind = 'not_found';

  constructor(eventId: string) {
    super(InboxErrorCode.EventNotFound, `No stored event with id ${eventId}`);
  }
}

export class InvalidEventIdError extends DomainError {
  readonly kind = 'invalid_input';

  constructor() {
    super(InboxErrorCode.InvalidEventId, 'An event id is a positive integer');
  }
}

/** A worker (or another replay) is running this event's handlers right now. */
export class EventInProgressError extends DomainError {
  readonly kind = 'conflict';

  constructor(eventId: string) {
    super(
      InboxErrorCode.EventInProgress,
      `Event ${eventId} is being handled right now; replay it once that run has finished`,
    );
  }
}

export class InboxStoppingError extends DomainError {
  readonly kind = 'unavailable';

  constructor() {
    super(InboxErrorCode.InboxStopping, 'The inbox is shutting down');
  }
}

/**
 * Another event of the same portal and object must run first (an earlier one is unfinished or
 * dead) or is running right now: a replay would run this one out of order or alongside it.
 */
export class EventWaitingInLineError extends DomainError {
  readonly kind = 'conflict';

  constructor(eventId: string) {
    super(
      InboxErrorCode.EventWaitingInLine,
      `Event ${eventId} waits for another event of the same object; replay it once that one has finished (an earlier dead one: replay or discard it first)`,
    );
  }
}

/** Only events that will not run again by themselves (dead, unhandled) can be discarded. */
export class EventNotDiscardableError extends DomainError {
  readonly kind = 'conflict';

  constructor(eventId: string, status: string) {
    super(
      InboxErrorCode.EventNotDiscardable,
      `Event ${eventId} is ${status}: only dead or unhandled events can be discarded`,
    );
  }
}

/**
 * An @OnBitrix24Event method on a provider the inbox cannot call: handlers run outside any
 * request, on the one instance made at start, so their provider must be a default-scope singleton
 * that depends on singletons only. Thrown at start, so such an app does not boot.
 */
export class UncallableHandlerProviderError extends Error {
  constructor(className: string, methodName: string, scope: string) {
    super(
      `${className}.${methodName} is an @OnBitrix24Event handler, but its provider ${className} is ` +
        `${scope}: the inbox calls handlers outside any request, on one instance made at start, ` +
        `so it would never run. Make ${className} a default-scope (singleton) provider that ` +
        `depends on singletons only, or move the handler to one.`,
    );
    this.name = 'UncallableHandlerProviderError';
  }
}
