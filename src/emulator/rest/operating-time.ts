import type { Clock } from '../clock';

const SLOT_MS = 60_000;
const WINDOW_SLOTS = 10;

export interface OperatingUsage {
  /** Seconds the method ran within the window: `time.operating`. */
  readonly operatingSeconds: number;
  /** Unix seconds when the oldest counted minute leaves the window: `time.operating_reset_at`. */
  readonly resetAt: number;
}

/**
 * The per-method operating-time limit of contract §8: execution time summed per method over ten
 * one-minute slots.
 */
export class OperatingTimeMeter {
  private readonly slotsByMethod = new Map<string, Map<number, number>>();

  constructor(private readonly clock: Clock) {}

  record(method: string, seconds: number): void {
    const slot = Math.floor(this.clock.now() / SLOT_MS);
    let slots = this.slotsByMethod.get(method);
    if (slots === undefined) {
      slots = new Map();
      this.slotsByMethod.set(method, slots);
    }
    slots.set(slot, (slots.get(slot) ?? 0) + seconds);
  }

  usage(method: string): OperatingUsage {
    const nowMs = this.clock.now();
    const currentSlot = Math.floor(nowMs / SLOT_MS);
    const slots = this.slotsByMethod.get(method);
    let operatingSeconds = 0;
    let oldestSlot = currentSlot;
    for (const [slot, seconds] of slots ?? []) {
      if (slot <= currentSlot - WINDOW_SLOTS) {
        slots?.delete(slot);
        continue;
      }
      operatingSeconds += seconds;
      oldestSlot = Math.min(oldestSlot, slot);
    }
    return {
      operatingSeconds,
      resetAt: Math.floor(((oldestSlot + WINDOW_SLOTS) * SLOT_MS) / 1000),
    };
  }
}
