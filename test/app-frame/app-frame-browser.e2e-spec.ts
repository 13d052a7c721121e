import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import type { Browser } from 'puppeteer-core';
import { escapeHtml } from '../../src/webhooks/install-page';
import { keepScreenshot, launchBrowser } from '../support/browser';
import { installPortalDirectly } from '../support/portal-fixtures';
import { startHarness, type Harness } from '../webhooks/webhook-harness';

/**
 * Bitrix24 shows the app in an iframe of the portal's own origin and posts the frame form into it.
 * Here the "portal" page is served from `localhost`, the app from `127.0.0.1`: another origin.
 */
describe('the default UI page in a real browser', () => {
  let harness: Harness;
  let browser: Browser;
  const portalSite = Fastify();
  let portalPage = '';

  beforeAll(async () => {
    harness = await startHarness();
    portalSite.get('/', async (_request, reply) => reply.type('text/html').send(portalPage));
    await portalSite.listen({ host: '127.0.0.1', port: 0 });
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await portalSite.close();
    await harness.close();
  });

  it("renders the user's name from /app-api/me inside a cross-origin iframe", async () => {
    const portal = await installPortalDirectly(harness.emulator, harness.app);
    const frame = await harness.emulator.control.openAppFrame(portal.memberId, {
      userId: 9,
      admin: false,
      placement: 'CRM_DEAL_DETAIL_TAB',
      placementOptions: { ID: '15' },
    });
    const action = `${harness.app.url}/bitrix24/app?${new URLSearchParams(frame.query).toString()}`;
    const inputs = Object.entries(frame.form)
      .map(
        ([name, value]) =>
          `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`,
      )
      .join('');
    portalPage = [
      '<!DOCTYPE html><html><body><h1>Portal</h1>',
      `<form id="open" method="post" target="app" action="${escapeHtml(action)}">${inputs}</form>`,
      '<iframe name="app" id="app" style="width:800px;height:500px"></iframe>',
      '<script>document.getElementById("open").submit()</script>',
      '</body></html>',
    ].join('');

    const { port } = portalSite.server.address() as AddressInfo;
    const page = await browser.newPage();
    await page.setViewport({ width: 900, height: 700 });
    await page.goto(`http://localhost:${port}/`, { waitUntil: 'domcontentloaded' });

    const appFrame = await (await page.waitForSelector('#app'))!.contentFrame();
    await appFrame.waitForSelector('#status[data-ready="true"]', { timeout: 30_000 });
    expect(new URL(appFrame.url()).origin).toBe(harness.app.url);
    expect(new URL(page.url()).origin).not.toBe(harness.app.url);
    const shown: unknown = await appFrame.evaluate(
      `(() => Object.fromEntries(['user-name', 'user-id', 'is-admin', 'placement']
        .map((id) => [id, document.getElementById(id).textContent])))()`,
    );
    expect(shown).toEqual({
      'user-name': 'User 9',
      'user-id': '9',
      'is-admin': 'no',
      placement: 'CRM_DEAL_DETAIL_TAB',
    });
    const file = await keepScreenshot(page, 'app-frame-default-page');
    expect(existsSync(file)).toBe(true);
  });
});
