import { DomainError } from '../errors/domain-error';

export enum InboxErrorCode {
  EventNotFound = 'event_not_found',
  InvalidEventId = 'invalid_event_id',
  EventInProgress = 'event_in_progress',
  InboxStopping = 'inbox_stopping',
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
