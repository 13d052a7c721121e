import { DomainError } from '../errors/domain-error';

export enum OfflineQueueErrorCode {
  LeaseLost = 'drain_lease_lost',
  Stopping = 'drain_stopping',
  UnexpectedAnswer = 'drain_unexpected_answer',
  ClearFailed = 'drain_clear_failed',
  Deferred = 'drain_deferred',
}

/**
 * This process no longer holds the portal's drain lease (it expired, or another replica took it
 * over): nothing more may be committed or cleared by this drain.
 */
export class DrainLeaseLostError extends DomainError {
  readonly kind = 'conflict';

  constructor(memberId: string) {
    super(OfflineQueueErrorCode.LeaseLost, `The drain lease of portal ${memberId} was lost`);
  }
}

/** The application is shutting down: no new page is taken. */
export class DrainStoppingError extends DomainError {
  readonly kind = 'unavailable';

  constructor() {
    super(OfflineQueueErrorCode.Stopping, 'The offline queue drain is shutting down');
  }
}

/** Bitrix24 answered event.offline.get in a shape that cannot be committed safely. */
export class UnexpectedOfflineAnswerError extends DomainError {
  readonly kind = 'unavailable';

  constructor(memberId: string, detail: string) {
    super(
      OfflineQueueErrorCode.UnexpectedAnswer,
      `Unexpected event.offline.get answer for portal ${memberId}: ${detail}`,
    );
  }
}

/** The clear of a committed batch failed; the batch stays committed and is cleared on the next pass. */
export class OfflineClearFailedError extends DomainError {
  readonly kind = 'unavailable';

  constructor(memberId: string, processId: string, bitrixCode: string) {
    super(
      OfflineQueueErrorCode.ClearFailed,
      `event.offline.clear of batch ${processId} failed for portal ${memberId}: ${bitrixCode}`,
    );
  }
}

/**
 * The pass stops calling event.offline.get until the portal's operating-time window lets go: its
 * budget is spent (or Bitrix24 answered OPERATION_TIME_LIMIT). Everything taken is committed and
 * cleared; the drain ends `deferred` and the next pass is due in `waitMs`.
 */
export class DrainDeferredError extends DomainError {
  readonly kind = 'unavailable';

  constructor(
    memberId: string,
    readonly waitMs: number,
    readonly usedSeconds: number | undefined,
  ) {
    super(
      OfflineQueueErrorCode.Deferred,
      `The drain of portal ${memberId} waits ${Math.ceil(waitMs / 1000)} s for its operating-time window`,
    );
  }
}
