import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import type { Browser } from 'puppeteer-core';
import { keepScreenshot, launchBrowser } from '../support/browser';

describe('browser tests', () => {
  let browser: Browser;
  const server = Fastify();

  beforeAll(async () => {
    server.get('/', async (_request, reply) =>
      reply
        .type('text/html')
        .send(
          '<p id="greeting"></p><script>greeting.textContent = "rendered by " + "script"</script>',
        ),
    );
    await server.listen({ host: '127.0.0.1', port: 0 });
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await server.close();
  });

  it('runs scripts in the system Chromium and keep a screenshot', async () => {
    const { port } = server.server.address() as AddressInfo;
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForFunction("document.querySelector('#greeting').textContent !== ''");
    expect(await page.evaluate("document.querySelector('#greeting').textContent")).toBe(
      'rendered by script',
    );
    const file = await keepScreenshot(page, 'browser-smoke');
    expect(existsSync(file)).toBe(true);
  });
});
