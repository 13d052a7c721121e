import type { AppInfo } from '../../src/bitrix24/bitrix24.types';
import { installPortalDirectly } from '../support/portal-fixtures';
import { Bitrix24Harness, restClient, startBitrix24Harness } from './bitrix24-harness';

const RPS = 20;
const BURST = 10;

describe('the per-portal leaky bucket', () => {
  let h: Bitrix24Harness;

  beforeAll(async () => {
    // The emulator's portals and the client at the same limits.
    h = await startBitrix24Harness({
      emulatorRateLimit: { rps: RPS, burst: BURST },
      env: { BITRIX24_RATE_LIMIT_RPS: String(RPS), BITRIX24_RATE_LIMIT_BURST: String(BURST) },
    });
  });

  afterAll(async () => {
    await h?.close();
  });

  it('takes a burst of 100 calls to one portal without one QUERY_LIMIT_EXCEEDED, no faster than the bucket allows', async () => {
    const portal = await installPortalDirectly(h.emulator, h.app);
    const client = restClient(h.app, portal.memberId);
    const calls = 100;

    const startedAt = performance.now();
    const answers = await Promise.all(
      Array.from({ length: calls }, () => client.call<AppInfo>('app.info')),
    );
    const elapsedSeconds = (performance.now() - startedAt) / 1000;

    const stats = await h.emulator.control.stats(portal.memberId);
    expect(answers.every((answer) => answer.result.INSTALLED === true)).toBe(true);
    expect(stats.rateLimitRefusals).toBe(0);
    expect(stats.restCalls['app.info']).toBe(calls);
    // The burst goes at once, every further call waits for the bucket to drain 1/RPS: the calls
    // cannot have taken less. (How close to that bound they come is the bucket benchmark's to say.)
    const boundSeconds = (calls - BURST) / RPS;
    expect(elapsedSeconds).toBeGreaterThanOrEqual(boundSeconds * 0.85);
  });

  it('backs off and completes every call when the portal is tightened behind its back', async () => {
    const portal = await installPortalDirectly(h.emulator, h.app);
    await h.emulator.control.setFaults(portal.memberId, { rateLimit: { rps: 5, burst: 5 } });
    const client = restClient(h.app, portal.memberId);

    const answers = await Promise.all(
      Array.from({ length: 30 }, () => client.call<AppInfo>('app.info')),
    );

    const stats = await h.emulator.control.stats(portal.memberId);
    expect(answers).toHaveLength(30);
    expect(answers.every((answer) => answer.result.INSTALLED === true)).toBe(true);
    expect(stats.rateLimitRefusals).toBeGreaterThan(0);
  });

  it("follows a portal's own rate-limit override (an Enterprise plan, or a tighter one)", async () => {
    const portal = await installPortalDirectly(h.emulator, h.app, {
      rateLimit: { rps: 5, burst: 4 },
    });
    await h.emulator.control.setFaults(portal.memberId, { rateLimit: { rps: 5, burst: 4 } });
    const client = restClient(h.app, portal.memberId);

    await Promise.all(Array.from({ length: 16 }, () => client.call<AppInfo>('app.info')));

    expect((await h.emulator.control.stats(portal.memberId)).rateLimitRefusals).toBe(0);
  });
});
