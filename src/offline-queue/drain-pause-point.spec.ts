import { ConfigurationError, loadConfig } from '../config/app-config';
import { AppLogger, createPinoLogger } from '../logging/app-logger';
import { DrainPausePoint } from './drain-pause-point';

const base = { BITRIX24_CLIENT_ID: 'id', BITRIX24_CLIENT_SECRET: 'secret' };
const logger = new AppLogger(createPinoLogger('silent'));

describe('DrainPausePoint (test-only fault hook)', () => {
  it('is refused in production and must name a point and a page', () => {
    expect(() =>
      loadConfig({
        ...base,
        NODE_ENV: 'production',
        TOKEN_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64'),
        DRAIN_TEST_PAUSE_AT: 'after-get:1',
      }),
    ).toThrow(/DRAIN_TEST_PAUSE_AT is a test hook/);
    expect(() => loadConfig({ ...base, DRAIN_TEST_PAUSE_AT: 'after-lunch:1' })).toThrow(
      ConfigurationError,
    );
    expect(() => loadConfig({ ...base, DRAIN_TEST_PAUSE_AT: 'after-get:0' })).toThrow(
      ConfigurationError,
    );
    expect(loadConfig({ ...base, DRAIN_TEST_PAUSE_AT: 'after-batch:3' }).drain.testPauseAt).toBe(
      'after-batch:3',
    );
  });

  it('does nothing unless configured for that point and page', async () => {
    const unset = new DrainPausePoint(loadConfig(base), logger);
    await expect(unset.reached('after-get', 1, 'p')).resolves.toBeUndefined();
    const set = new DrainPausePoint(
      loadConfig({ ...base, DRAIN_TEST_PAUSE_AT: 'after-get:2' }),
      logger,
    );
    await expect(set.reached('after-get', 1, 'p')).resolves.toBeUndefined();
    await expect(set.reached('after-commit', 2, 'p')).resolves.toBeUndefined();
  });

  it('holds the drain at its point until the application stops', async () => {
    const pause = new DrainPausePoint(
      loadConfig({ ...base, DRAIN_TEST_PAUSE_AT: 'after-commit:2' }),
      logger,
    );
    let resumed = false;
    const held = pause.reached('after-commit', 2, 'p').then(() => (resumed = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(resumed).toBe(false);
    pause.stop();
    await held;
    expect(resumed).toBe(true);
  });
});
