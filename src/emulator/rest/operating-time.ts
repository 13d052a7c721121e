import type { Clock } from '../clock';

const SLOT_MS = 60_000;
const WINDOW_SLOTS = 10;

/** The cloud limit of limits.md: 480 s of one method's summed run time within 10 minutes. */
export const CLOUD_OPERATING_LIMIT_SECONDS = 480;

export interface OperatingUsage {
  /** Seconds the method ran within the window: `time.operating`. */
  readonly operatingSeconds: number;
  /** Unix seconds when the oldest counted minute leaves the window: `time.operating_reset_at`. */
  readonly resetAt: number;
}

/**
 * What one call of a method costs: a base plus a share per row it returned. Bitrix24 states only
 * that the cost depends on the data the portal has to go through (limits.md); the figures are the
 * test's to choose.
 */
export interface OperatingCost {
  readonly baseSeconds: number;
  readonly perRowSeconds: number;
}

/**
 * Which method a call inside a `batch` is billed to. `commands`: each command on its own method,
 * the outer batch not at all (limits.md, batch.md). `batch`: the commands' time on `batch`, as
 * measured on a cloud portal (bitrix24/b24jssdk PR #539); the methods inside are not billed.
 */
export type BatchBilling = 'commands' | 'batch';

/** `PUT /_emulator/portals/:memberId/operating-time`: fields left out keep their value. */
export interface OperatingTimeSettings {
  /** Summed seconds per method within 10 minutes beyond which the method answers 429. */
  readonly limitSeconds?: number;
  /** Modelled costs per method; a method without one costs the time it really ran. */
  readonly costs?: Readonly<Record<string, OperatingCost>>;
  readonly batchBilling?: BatchBilling;
}

export interface OperatingTimeState {
  readonly limitSeconds: number;
  readonly costs: Readonly<Record<string, OperatingCost>>;
  readonly batchBilling: BatchBilling;
}

/**
 * The per-method operating-time limit of limits.md: execution time summed per method over ten
 * one-minute slots. Past `limitSeconds` the method is refused until enough of the window has
 * passed (system-errors.md: "the block is lifted automatically once the accumulated execution time
 * of the method no longer exceeds the limit"); every other method goes on.
 */
export class OperatingTimeMeter {
  private readonly slotsByMethod = new Map<string, Map<number, number>>();
  /** The most each method's window ever held: how close the clients came to the limit. */
  private readonly peakByMethod = new Map<string, number>();
  private state: OperatingTimeState = {
    limitSeconds: CLOUD_OPERATING_LIMIT_SECONDS,
    costs: {},
    batchBilling: 'commands',
  };

  constructor(private readonly clock: Clock) {}

  get settings(): OperatingTimeState {
    return this.state;
  }

  configure(settings: OperatingTimeSettings): OperatingTimeState {
    this.state = {
      limitSeconds: settings.limitSeconds ?? this.state.limitSeconds,
      costs: settings.costs ?? this.state.costs,
      batchBilling: settings.batchBilling ?? this.state.batchBilling,
    };
    return this.state;
  }

  /** The modelled cost of a call that returned `rows` rows; undefined: bill what it really took. */
  modelledSeconds(method: string, rows: number): number | undefined {
    const cost = this.state.costs[method];
    return cost === undefined ? undefined : cost.baseSeconds + cost.perRowSeconds * rows;
  }

  /** Whether the method is blocked now: its window already holds more than the limit. */
  blocked(method: string, limitSeconds = this.state.limitSeconds): boolean {
    return this.usage(method).operatingSeconds > limitSeconds;
  }

  record(method: string, seconds: number): void {
    const slot = Math.floor(this.clock.now() / SLOT_MS);
    let slots = this.slotsByMethod.get(method);
    if (slots === undefined) {
      slots = new Map();
      this.slotsByMethod.set(method, slots);
    }
    slots.set(slot, (slots.get(slot) ?? 0) + seconds);
    const { operatingSeconds } = this.usage(method);
    if (operatingSeconds > (this.peakByMethod.get(method) ?? 0)) {
      this.peakByMethod.set(method, operatingSeconds);
    }
  }

  /** Per method: the window's sum now and the highest it ever was. */
  report(): Record<string, { operatingSeconds: number; peakSeconds: number; resetAt: number }> {
    const report: Record<
      string,
      { operatingSeconds: number; peakSeconds: number; resetAt: number }
    > = {};
    for (const [method, peakSeconds] of this.peakByMethod) {
      report[method] = { ...this.usage(method), peakSeconds };
    }
    return report;
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
