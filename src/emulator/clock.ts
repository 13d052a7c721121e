/**
 * Logical time for everything the emulator ages: token lifetimes, the leaky bucket, `minTimeout`,
 * TIMESTAMP_X and the reserved-row purge. Tests move it forward instead of waiting.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Moves time forward; never backwards, so orderings by time stay valid. */
  advance(milliseconds: number): void;
}

/** Wall-clock time plus whatever a test has skipped ahead. */
export class RealClock implements Clock {
  private skippedMs = 0;

  now(): number {
    return Date.now() + this.skippedMs;
  }

  advance(milliseconds: number): void {
    assertForward(milliseconds);
    this.skippedMs += milliseconds;
  }
}

/** Time that stands still until advanced: for unit tests that need exact ages. */
export class ManualClock implements Clock {
  constructor(private currentMs: number = Date.UTC(2026, 0, 1)) {}

  now(): number {
    return this.currentMs;
  }

  advance(milliseconds: number): void {
    assertForward(milliseconds);
    this.currentMs += milliseconds;
  }
}

function assertForward(milliseconds: number): void {
  if (!Number.isFinite(milliseconds) || milliseconds < 0) {
    throw new RangeError(`The clock only moves forward (got ${milliseconds} ms)`);
  }
}
