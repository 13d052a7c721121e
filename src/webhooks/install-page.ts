/** The pages the install URL answers. Everything interpolated is escaped; no token ever goes in. */

/** Headers for both pages: never cached, never sniffed, and no referrer leaks the install query. */
export const INSTALL_PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => HTML_ESCAPES[character]);
}

function page(title: string, head: string, body: string): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    head,
    '</head>',
    '<body style="font-family: sans-serif; margin: 2em;">',
    body,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

/** Loads the BX24 library and tells Bitrix24 the installation is finished (the app becomes INSTALLED=Y). */
export function renderInstalledPage(domain: string): string {
  return page(
    'Application installed',
    [
      '<script src="//api.bitrix24.com/api/v1/"></script>',
      '<script>BX24.init(function () { BX24.installFinish(); });</script>',
    ].join('\n'),
    [
      '<h1>Application installed</h1>',
      `<p>The application is installed on ${escapeHtml(domain)}. Finishing the installation…</p>`,
    ].join('\n'),
  );
}

/** Says what went wrong in plain words; `explanation` comes from our own error messages. */
export function renderInstallFailedPage(explanation: string): string {
  return page(
    'Installation failed',
    '',
    [
      '<h1>The application could not be installed</h1>',
      `<p>${escapeHtml(explanation)}</p>`,
      '<p>If the problem persists, contact the application&#39;s vendor.</p>',
    ].join('\n'),
  );
}
