interface Waiter {
  grant(): void;
  timer: NodeJS.Timeout;
}

/**
 * At most `capacity` installation confirmations in flight at once. One more waits its turn (first
 * come, first served) for at most `maxWaitMs`; a slot is handed straight from a finishing
 * confirmation to the longest waiter, so a steady stream cannot starve anyone.
 */
export class ConfirmationSlots {
  private inFlight = 0;
  private readonly waiters: Waiter[] = [];

  constructor(
    private readonly capacity: number,
    private readonly maxWaitMs: number,
  ) {}

  /** True once a slot is held (the caller must release it); false when none freed up in time. */
  acquire(): Promise<boolean> {
    if (this.inFlight < this.capacity) {
      this.inFlight += 1;
      return Promise.resolve(true);
    }
    return new Promise<boolean>((resolve) => {
      const waiter: Waiter = {
        grant: () => {
          clearTimeout(waiter.timer);
          resolve(true);
        },
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          resolve(false);
        }, this.maxWaitMs),
      };
      this.waiters.push(waiter);
    });
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next.grant();
    else this.inFlight -= 1;
  }

  get busy(): number {
    return this.inFlight;
  }

  get waiting(): number {
    return this.waiters.length;
  }
}
