/**
 * Counts failed admin authentications per client address in fixed one-minute windows. Once an
 * address reaches the limit it is refused until its window ends, whatever it presents, so a
 * guesser gets at most `maxFailures` tries a minute. Memory is bounded: at most `maxTracked`
 * addresses are remembered, the stalest forgotten first.
 */
export class FailedAttemptLimiter {
  private readonly windows = new Map<string, { startedAt: number; failures: number }>();

  constructor(
    private readonly maxFailures: number,
    private readonly windowMs = 60_000,
    private readonly maxTracked = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Milliseconds until `address` may try again; 0 when it is not blocked. */
  blockedForMs(address: string): number {
    const window = this.currentWindow(address);
    if (!window || window.failures < this.maxFailures) return 0;
    return window.startedAt + this.windowMs - this.now();
  }

  /** Records one failure; answers how many `address` has in the current window. */
  recordFailure(address: string): number {
    const window = this.currentWindow(address);
    if (window) {
      window.failures += 1;
      return window.failures;
    }
    this.makeRoom();
    this.windows.set(address, { startedAt: this.now(), failures: 1 });
    return 1;
  }

  get trackedAddresses(): number {
    return this.windows.size;
  }

  private currentWindow(address: string): { startedAt: number; failures: number } | undefined {
    const window = this.windows.get(address);
    if (window && this.now() - window.startedAt >= this.windowMs) {
      this.windows.delete(address);
      return undefined;
    }
    return window;
  }

  private makeRoom(): void {
    if (this.windows.size < this.maxTracked) return;
    const now = this.now();
    for (const [address, window] of this.windows) {
      if (now - window.startedAt >= this.windowMs) this.windows.delete(address);
    }
    // Maps iterate in insertion order, so the first key is the oldest window.
    while (this.windows.size >= this.maxTracked) {
      const oldest = this.windows.keys().next().value as string;
      this.windows.delete(oldest);
    }
  }
}
