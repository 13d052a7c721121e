import { DomainError } from '../errors/domain-error';

export enum InboxErrorCode {
  EventNotFound = 'event_not_found',
  InvalidEventId = 'invalid_event_id',
  EventInProgress = 'event_in_progress',
  InboxStopping = 'inbox_stopping',
  EventWaitingInLine = 'event_waiting_in_line',
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
 * Another event of the same portal and object must run first (an earlier one is unfinished) or is
 * running right now: a replay would run this one out of order or alongside it.
 */
export class EventWaitingInLineError extends DomainError {
  readonly kind = 'conflict';

  constructor(eventId: string) {
    super(
      InboxErrorCode.EventWaitingInLine,
      `Event ${eventId} waits for another event of the same object; replay it once that one has finished`,
    );
  }
}
