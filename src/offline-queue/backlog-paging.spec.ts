import {
  AFTER_RESET_MS,
  BacklogPaging,
  TARGET_PAGE_SECONDS,
  UNKNOWN_RESET_WAIT_MS,
  type PagingStep,
} from './backlog-paging';

const SETTINGS = { pageSize: 50, maxPageSize: 1000, limitSeconds: 480 };

function limitOf(step: PagingStep): number {
  if (step.kind !== 'page') throw new Error(`expected a page, got ${JSON.stringify(step)}`);
  return step.limit;
}

describe('BacklogPaging', () => {
  it('starts at DRAIN_PAGE_SIZE and doubles while pages come back full, up to DRAIN_MAX_PAGE_SIZE', () => {
    const paging = new BacklogPaging(SETTINGS);
    const limits = [limitOf(paging.first())];
    for (let i = 0; i < 7; i += 1) {
      const asked = limits[limits.length - 1];
      limits.push(limitOf(paging.next({ asked, rows: asked, runSeconds: asked * 0.0005 })));
    }
    expect(limits).toEqual([50, 100, 200, 400, 800, 1000, 1000, 1000]);
  });

  it('goes back to DRAIN_PAGE_SIZE after a short page: the backlog is gone', () => {
    const paging = new BacklogPaging(SETTINGS);
    expect(limitOf(paging.next({ asked: 800, rows: 800, runSeconds: 0.4 }))).toBe(1000);
    expect(limitOf(paging.next({ asked: 1000, rows: 130, runSeconds: 0.07 }))).toBe(50);
    expect(limitOf(paging.next({ asked: 50, rows: 50, runSeconds: 0.03 }))).toBe(100);
  });

  it('sizes a page to run at most 5 s, predicting from the seconds per row it learned', () => {
    const paging = new BacklogPaging(SETTINGS);
    // 10 ms a row: 5 s hold 500 rows, whatever the maximum.
    const step = paging.next({ asked: 400, rows: 400, runSeconds: 4 });
    expect(step).toEqual({ kind: 'page', limit: TARGET_PAGE_SECONDS / 0.01, expectedRunMs: 5000 });
    // A portal slower than DRAIN_PAGE_SIZE in 5 s still gets pages of DRAIN_PAGE_SIZE.
    const slow = new BacklogPaging(SETTINGS);
    expect(limitOf(slow.next({ asked: 50, rows: 50, runSeconds: 10 }))).toBe(50);
  });

  it('learns the cost per row from what a page added to time.operating when that is more than its run time', () => {
    const paging = new BacklogPaging(SETTINGS);
    paging.next({ asked: 50, rows: 50, runSeconds: 0.01, usedSeconds: 10 });
    expect(paging.learnedSecondsPerRow).toBeCloseTo(0.0002);
    // 100 rows added 2 s: 20 ms a row is learned (halfway, then all the way on repeats).
    paging.next({ asked: 100, rows: 100, runSeconds: 0.01, usedSeconds: 12 });
    expect(paging.learnedSecondsPerRow).toBeCloseTo(0.0101);
    // A sum that fell (the window shed a minute) teaches nothing beyond the run time.
    paging.next({ asked: 200, rows: 200, runSeconds: 0.01, usedSeconds: 5 });
    expect(paging.learnedSecondsPerRow).toBeCloseTo(0.0101 / 2 + 0.00005 / 2);
  });

  it('uses at most half of the budget left (80 % of the limit minus time.operating)', () => {
    const paging = new BacklogPaging(SETTINGS);
    // 1 ms a row; 80 % of 480 is 384; 380 used leaves 4 s, of which half pays 2000 rows, and
    // the doubling asks for 1000 at most.
    expect(limitOf(paging.next({ asked: 500, rows: 500, runSeconds: 0.5, usedSeconds: 380 }))).toBe(
      1000,
    );
    // 383 used: 1 s left, half of it pays 500 rows.
    const later = new BacklogPaging(SETTINGS);
    expect(limitOf(later.next({ asked: 1000, rows: 1000, runSeconds: 1, usedSeconds: 383 }))).toBe(
      500,
    );
    // The page that added 3 s for 1000 rows raises the cost learned to 2 ms a row: 250 rows.
    expect(limitOf(paging.next({ asked: 1000, rows: 1000, runSeconds: 1, usedSeconds: 383 }))).toBe(
      250,
    );
  });

  it('waits until operating_reset_at plus a second once the budget cannot pay for a page of DRAIN_PAGE_SIZE', () => {
    const paging = new BacklogPaging(SETTINGS);
    paging.next({ asked: 50, rows: 50, runSeconds: 0.05, usedSeconds: 383.9 });
    const step = paging.next({
      asked: 50,
      rows: 50,
      runSeconds: 0.05,
      usedSeconds: 383.95,
      resetInMs: 42_000,
    });
    expect(step).toEqual({ kind: 'defer', waitMs: 42_000 + AFTER_RESET_MS, usedSeconds: 383.95 });
    // Past the budget, or with no reset time: a minute slot.
    const over = new BacklogPaging(SETTINGS);
    expect(over.next({ asked: 50, rows: 0, usedSeconds: 400 })).toEqual({
      kind: 'defer',
      waitMs: UNKNOWN_RESET_WAIT_MS,
      usedSeconds: 400,
    });
  });

  it('grows on the page size alone where Bitrix24 reports no operating time (self-hosted)', () => {
    const paging = new BacklogPaging(SETTINGS);
    expect(paging.next({ asked: 50, rows: 50 })).toEqual({ kind: 'page', limit: 100 });
    expect(paging.next({ asked: 100, rows: 100 })).toEqual({ kind: 'page', limit: 200 });
  });

  it('refuses a maximum below the page size', () => {
    expect(() => new BacklogPaging({ ...SETTINGS, maxPageSize: 10 })).toThrow(RangeError);
  });
});
