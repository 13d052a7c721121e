import type { CompletedRun } from './event-processor.service';

/**
 * Runs whose handlers ended, waiting to be recorded, written many at a time: while one batch is
 * being recorded the next runs gather, so under load a batch holds whatever ended meanwhile (at
 * most `maxBatch`) and costs a handful of statements, not a transaction per run. A run waiting
 * here still holds its claim, so nothing else of its object starts before it is recorded; a
 * process that dies with runs here loses nothing: their claims lapse and they run again.
 */
export class RunRecordQueue {
  private readonly waiting: CompletedRun[] = [];
  private recording = 0;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly record: (runs: readonly CompletedRun[]) => Promise<void>,
    private readonly onFailure: (error: unknown, runs: readonly CompletedRun[]) => void,
    /** Called after each batch: room was made. */
    private readonly onRecorded: () => void,
    private readonly maxBatch: number,
  ) {}

  /** Runs not yet recorded (waiting, and in the batch being written). */
  get size(): number {
    return this.waiting.length + this.recording;
  }

  add(run: CompletedRun): void {
    this.waiting.push(run);
    // Runs that end in the same turn of the event loop go in one batch.
    this.flushing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() =>
      this.flush(),
    );
  }

  /** Resolves once every run added so far is recorded (or given up on). */
  async drained(): Promise<void> {
    while (this.flushing !== undefined) await this.flushing;
  }

  private async flush(): Promise<void> {
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.maxBatch);
      this.recording = batch.length;
      try {
        await this.record(batch);
      } catch (error) {
        this.onFailure(error, batch);
      }
      this.recording = 0;
      this.onRecorded();
    }
    this.flushing = undefined;
  }
}
