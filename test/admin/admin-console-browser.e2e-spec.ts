import type { Browser, Page } from 'puppeteer-core';
import { DataSource } from 'typeorm';
import { startEmulator, type RunningEmulator } from '../../src/emulator';
import { keepScreenshot, launchBrowser } from '../support/browser';
import { installPortalDirectly } from '../support/portal-fixtures';
import { createTestDatabase, TestDatabase } from '../support/postgres';
import {
  startTestApp,
  TEST_ADMIN_TOKEN,
  TEST_CLIENT_ID,
  TEST_CLIENT_SECRET,
  TestApp,
} from '../support/test-app';
import { bearer } from './admin-routes';

/** What the functions run inside the page touch (this project compiles without the DOM lib). */
interface PageElement {
  hidden: boolean;
  textContent: string | null;
  dataset: Record<string, string | undefined>;
}
declare const document: {
  querySelector(selector: string): PageElement | null;
  getElementById(id: string): PageElement | null;
};

describe('admin console in a real browser', () => {
  let database: TestDatabase;
  let emulator: RunningEmulator;
  let testApp: TestApp;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    emulator = await startEmulator({ clientId: TEST_CLIENT_ID, clientSecret: TEST_CLIENT_SECRET });
    testApp = await startTestApp({
      databaseUrl: database.url,
      env: { BITRIX24_OAUTH_URL: emulator.url, EXAMPLE_HANDLERS: 'true' },
    });
    // More portals than one page (50): cheap rows, sorted before the emulator's hex member ids.
    await testApp.app.get(DataSource).query(
      `INSERT INTO "portals" ("member_id", "domain", "client_endpoint", "status")
       SELECT '0bulk' || lpad(n::text, 4, '0'), 'bulk' || n || '.bitrix24.com',
              'https://bulk' || n || '.bitrix24.com/rest/', 'active'
         FROM generate_series(1, 120) AS n`,
    );
    browser = await launchBrowser();
    page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('pageerror', (error) => problems.push(String(error)));
  });

  afterAll(async () => {
    await browser?.close();
    await testApp?.close();
    await emulator?.close();
    await database?.drop();
  });

  const rowCount = (selector: string): Promise<number> =>
    page.$$eval(selector, (rows) => rows.length);

  it('refuses a wrong token and shows why', async () => {
    await page.goto(`${testApp.url}/admin/ui`, { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('#token');
    await page.type('#token', 'not-the-admin-token');
    await page.click('#sign-in');
    await page.waitForFunction(() =>
      /Wrong token/.test(document.getElementById('login-error')?.textContent ?? ''),
    );
    expect(await page.$eval('#view', (view) => (view as unknown as PageElement).hidden)).toBe(true);
    await keepScreenshot(page, 'admin-console-wrong-token');
    problems.length = 0; // the refused request itself logs a 401 in the console
  });

  it('signs in, pages through the portals, and shows a portal drained by the emulator', async () => {
    const portal = await installPortalDirectly(emulator, testApp);
    // The fixture binds nothing: bind the configured events as an install would.
    const rebound = await fetch(`${testApp.url}/admin/portals/${portal.memberId}/rebind`, {
      method: 'POST',
      headers: bearer(TEST_ADMIN_TOKEN),
    });
    expect(rebound.status).toBe(200);
    await emulator.control.enqueueOfflineEvents(portal.memberId, {
      events: [
        { event: 'ONCRMDEALUPDATE', data: { FIELDS: { ID: '501' } } },
        { event: 'ONCRMDEALUPDATE', data: { FIELDS: { ID: '502' } } },
      ],
      notify: false,
    });
    const drained = await fetch(`${testApp.url}/admin/portals/${portal.memberId}/drain`, {
      method: 'POST',
      headers: bearer(TEST_ADMIN_TOKEN),
    });
    expect(((await drained.json()) as { events: number }).events).toBe(2);

    await page.type('#token', TEST_ADMIN_TOKEN);
    await page.click('#sign-in');
    await page.waitForSelector('tr.portal-row');
    expect(await page.evaluate(() => sessionStorage.length)).toBe(1);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
    expect(await rowCount('tr.portal-row')).toBe(50);
    const firstOnPageOne = await page.$eval(
      'tr.portal-row',
      (row) => (row as unknown as PageElement).dataset.memberId,
    );
    await keepScreenshot(page, 'admin-console-portals');

    await page.click('#page-next');
    await page.waitForFunction(
      (first) => {
        const row = document.querySelector('tr.portal-row');
        return row && row.dataset.memberId !== first;
      },
      {},
      firstOnPageOne,
    );
    expect(await rowCount('tr.portal-row')).toBe(50);
    expect(
      await page.$eval('#page-info', (info) => (info as unknown as PageElement).textContent),
    ).toMatch(/^Page 2/);

    // Search finds the drained portal; its page lists the events the drain stored.
    await page.type('#filter-q', portal.memberId.slice(0, 10));
    await page.click('#apply-filters');
    await page.waitForSelector(`tr.portal-row[data-member-id="${portal.memberId}"]`);
    expect(await rowCount('tr.portal-row')).toBe(1);
    await page.click(`tr.portal-row[data-member-id="${portal.memberId}"] a`);
    await page.waitForSelector('#token-health');
    expect(
      await page.$eval('#portal-member-id', (code) => (code as unknown as PageElement).textContent),
    ).toBe(portal.memberId);
    expect(
      await page.$eval(
        '#drain-state',
        (section) => (section as unknown as PageElement).textContent,
      ),
    ).toContain('drained');
    await keepScreenshot(page, 'admin-console-portal');
    await page.click('#portal-events');
    await page.waitForSelector('tr.event-row');
    expect(await rowCount('tr.event-row')).toBe(2);
    await keepScreenshot(page, 'admin-console-portal-events');
  });

  it('lists dead letters first and replays one: its status changes', async () => {
    const dataSource = testApp.app.get(DataSource);
    const [event] = await dataSource.query<{ id: string }[]>(
      `SELECT "id" FROM "stored_events" ORDER BY "id" LIMIT 1`,
    );
    // Wait until the handler has run, then make the event a dead letter.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const [row] = await dataSource.query<{ status: string }[]>(
        `SELECT "status" FROM "stored_events" WHERE "id" = $1`,
        [event.id],
      );
      if (row.status === 'processed' || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await dataSource.query(
      `UPDATE "stored_events" SET "status" = 'dead', "last_error" = 'handler threw: boom',
              "next_attempt_at" = NULL WHERE "id" = $1`,
      [event.id],
    );

    await page.goto(`${testApp.url}/admin/ui#/events`, { waitUntil: 'domcontentloaded' });
    await page.waitForSelector(`tr.event-row[data-event-id="${event.id}"]`);
    expect(
      await page.$$eval('tr.event-row', (rows) =>
        rows.map((row) => (row as unknown as PageElement).dataset.status),
      ),
    ).toEqual(['dead']);
    await keepScreenshot(page, 'admin-console-dead-letters');
    await page.click(`tr.event-row[data-event-id="${event.id}"] a`);
    await page.waitForSelector('#payload');
    expect(
      await page.$eval('#payload', (pre) => (pre as unknown as PageElement).textContent),
    ).toContain('FIELDS');
    await page.click('#action-replay');
    await page.waitForFunction(() =>
      /Replayed: status is now processed/.test(
        document.getElementById('action-result')?.textContent ?? '',
      ),
    );
    expect(
      await page.$eval('#event-status', (badge) => (badge as unknown as PageElement).textContent),
    ).toBe('processed');
    await keepScreenshot(page, 'admin-console-replayed');
  });

  it('draws the stats charts', async () => {
    await page.goto(`${testApp.url}/admin/ui#/stats`, { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('#chart-throughput canvas');
    await page.waitForSelector('#chart-backlog canvas');
    await page.waitForSelector('#event-counts');
    await keepScreenshot(page, 'admin-console-stats');
    expect(problems).toEqual([]);
  });
});
