import { ConfirmationSlots } from './confirmation-slots';

describe('ConfirmationSlots', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });

  afterEach(() => {
    jest.useRealTimers();
  });

  it('grants up to its capacity at once', async () => {
    const slots = new ConfirmationSlots(2, 1000);

    expect(await slots.acquire()).toBe(true);
    expect(await slots.acquire()).toBe(true);
    expect(slots.busy).toBe(2);
  });

  it('hands a released slot to the longest waiter, first come first served', async () => {
    const slots = new ConfirmationSlots(1, 1000);
    await slots.acquire();
    const granted: string[] = [];
    const first = slots.acquire().then((ok) => ok && granted.push('first'));
    const second = slots.acquire().then((ok) => ok && granted.push('second'));
    expect(slots.waiting).toBe(2);

    slots.release();
    await first;
    expect(granted).toEqual(['first']);
    expect(slots.busy).toBe(1);

    slots.release();
    await second;
    expect(granted).toEqual(['first', 'second']);
    slots.release();
    expect(slots.busy).toBe(0);
  });

  it('gives up after maxWaitMs without taking a slot', async () => {
    const slots = new ConfirmationSlots(1, 1000);
    await slots.acquire();
    const waiting = slots.acquire();

    jest.advanceTimersByTime(999);
    expect(slots.waiting).toBe(1);
    jest.advanceTimersByTime(1);

    expect(await waiting).toBe(false);
    expect(slots.waiting).toBe(0);
    slots.release();
    expect(slots.busy).toBe(0);
    expect(await slots.acquire()).toBe(true);
  });
});
