/**
 * What kind of failure an error is, independent of transport. The global filter maps kinds to
 * HTTP statuses, so services never know about HTTP.
 */
export type ErrorKind =
  | 'invalid_input'
  | 'unauthenticated'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'payload_too_large'
  | 'rate_limited'
  | 'unavailable';

/** Base of every feature's typed error: a stable machine code plus a human message. */
export abstract class DomainError extends Error {
  abstract readonly kind: ErrorKind;
  /** When set, the answer tells the client when to come back (Retry-After, in seconds). */
  readonly retryAfterSeconds?: number;

  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class InvalidInputError extends DomainError {
  readonly kind = 'invalid_input';
}

export class NotFoundError extends DomainError {
  readonly kind = 'not_found';
}
