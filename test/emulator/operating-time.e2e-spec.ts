import { startEmulator, type RunningEmulator } from '../../src/emulator';

const CLIENT = { clientId: 'test.app', clientSecret: 'test-secret' };

interface Envelope {
  result?: Record<string, unknown>;
  time?: { operating?: number; operating_reset_at?: number; duration?: number };
  error?: string;
  error_description?: string;
}

let emulator: RunningEmulator;

beforeAll(async () => {
  emulator = await startEmulator(CLIENT);
});

afterAll(() => emulator.close());

/** A portal with the app installed, ONCRMDEALUPDATE bound offline and `events` rows queued. */
async function portalWithQueue(events: number) {
  const portal = await emulator.control.createPortal({});
  const { form } = await emulator.control.install(portal.memberId, { mode: 'ui' });
  await emulator.control.finishInstall(portal.memberId);
  const call = async (
    method: string,
    params: Record<string, unknown> = {},
  ): Promise<{ status: number; body: Envelope; ms: number }> => {
    const startedAt = performance.now();
    const response = await fetch(`${portal.clientEndpoint}${method}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...params, auth: form.AUTH_ID }),
    });
    const body = (await response.json()) as Envelope;
    return { status: response.status, body, ms: performance.now() - startedAt };
  };
  await call('event.bind', { event: 'ONCRMDEALUPDATE', event_type: 'offline' });
  await emulator.control.enqueueOfflineEvents(portal.memberId, {
    count: events,
    event: 'ONCRMDEALUPDATE',
    notify: false,
  });
  return { ...portal, call };
}

const COST = { baseSeconds: 0.02, perRowSeconds: 0.001 };

describe('operating time of event.offline.get', () => {
  it('bills a base plus a share per returned row, answers after that time and reports the sum', async () => {
    const portal = await portalWithQueue(300);
    await emulator.control.setOperatingTime(portal.memberId, {
      costs: { 'event.offline.get': COST },
    });

    const first = await portal.call('event.offline.get', { clear: 0, limit: 200 });
    expect(first.status).toBe(200);
    expect(first.body.time?.operating).toBeCloseTo(0.02 + 200 * 0.001, 6);
    expect(first.ms).toBeGreaterThanOrEqual(220 - 5);
    const second = await portal.call('event.offline.get', { clear: 0, limit: 200 });
    expect(second.body.time?.operating).toBeCloseTo(0.22 + 0.02 + 100 * 0.001, 6);
    // operating_reset_at: when the oldest counted minute leaves the 10-minute window.
    const nowSeconds = Date.now() / 1000;
    expect(second.body.time?.operating_reset_at).toBeGreaterThan(nowSeconds + 540);
    expect(second.body.time?.operating_reset_at).toBeLessThanOrEqual(nowSeconds + 600);

    const stats = await emulator.control.stats(portal.memberId);
    expect(stats.operatingTime['event.offline.get'].peakSeconds).toBeCloseTo(0.34, 6);
    expect(stats.operatingTime['event.offline.clear']).toBeUndefined();
  });

  it('answers 429 OPERATION_TIME_LIMIT past the limit, reserves nothing, and lets other methods run', async () => {
    const portal = await portalWithQueue(100);
    await emulator.control.setOperatingTime(portal.memberId, {
      limitSeconds: 0.1,
      costs: { 'event.offline.get': COST },
    });
    const page = await portal.call('event.offline.get', { clear: 0, limit: 100 });
    expect(page.body.time?.operating).toBeCloseTo(0.12, 6);

    const refused = await portal.call('event.offline.get', { clear: 0, limit: 50 });
    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({
      error: 'OPERATION_TIME_LIMIT',
      error_description: 'Method is blocked due to operation time limit',
    });
    const cleared = await portal.call('event.offline.clear', {
      process_id: page.body.result?.process_id,
    });
    expect(cleared.status).toBe(200);
    const stats = await emulator.control.stats(portal.memberId);
    expect(stats.operatingLimitRefusals).toBe(1);
    expect(stats.queue.total).toBe(0);

    // The block is lifted once the minute that held the time has left the window.
    await emulator.control.advanceClock(600);
    expect((await portal.call('event.offline.get', { clear: 0 })).status).toBe(200);
  });

  it('refuses a command inside a batch on its own method while the others in it run', async () => {
    const portal = await portalWithQueue(100);
    await emulator.control.setOperatingTime(portal.memberId, {
      limitSeconds: 0.1,
      costs: { 'event.offline.get': COST },
    });
    const page = await portal.call('event.offline.get', { clear: 0, limit: 100 });

    const step = await portal.call('batch', {
      cmd: {
        clear: `event.offline.clear?process_id=${String(page.body.result?.process_id)}`,
        next: 'event.offline.get?clear=0&limit=50',
      },
    });
    expect(step.status).toBe(200);
    const result = step.body.result as {
      result: Record<string, unknown>;
      result_error: Record<string, { error: string }>;
    };
    expect(result.result.clear).toBe(true);
    expect(result.result_error.next.error).toBe('OPERATION_TIME_LIMIT');
    expect((await emulator.control.stats(portal.memberId)).queue.total).toBe(0);
  });

  it('bills a whole batch to `batch` when told to, with the running sum in every command', async () => {
    const portal = await portalWithQueue(100);
    await emulator.control.setOperatingTime(portal.memberId, {
      costs: { 'event.offline.get': COST },
      batchBilling: 'batch',
    });

    const step = await portal.call('batch', {
      cmd: { a: 'event.offline.get?clear=0&limit=40', b: 'event.offline.get?clear=0&limit=60' },
    });
    const result = step.body.result as {
      result_time: Record<string, { operating: number }>;
    };
    expect(result.result_time.a.operating).toBeCloseTo(0.06, 6);
    expect(result.result_time.b.operating).toBeCloseTo(0.06 + 0.08, 6);
    expect(step.body.time?.operating).toBeCloseTo(0.14, 6);
    const stats = await emulator.control.stats(portal.memberId);
    expect(stats.operatingTime.batch.operatingSeconds).toBeCloseTo(0.14, 6);
    expect(stats.operatingTime['event.offline.get']).toBeUndefined();
  });
});
