import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { escapeHtml } from '../webhooks/install-page';

/** The page is shown inside Bitrix24's iframe: never cached (it holds a session), never sniffed. */
export const APP_PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/** The vendor's index.html with the session placed in its head. */
export async function renderAppPage(uiDir: string, sessionToken: string): Promise<string> {
  const html = await readFile(path.join(uiDir, 'index.html'), 'utf8');
  const meta = `<meta name="b24-session" content="${escapeHtml(sessionToken)}">`;
  return /<\/head>/i.test(html) ? html.replace(/<\/head>/i, `${meta}\n</head>`) : meta + html;
}

export function renderRefusedPage(): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8"><title>Not authorized</title></head>',
    '<body><h1>Not authorized</h1>',
    '<p>This page must be opened by Bitrix24, from a portal where the application is installed.</p>',
    '</body></html>',
  ].join('\n');
}

const UI_FILE = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}$/;
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
};

/** A file of the UI folder by its bare name (no paths, no dot-files); null when there is none. */
export async function readUiFile(
  uiDir: string,
  name: string,
): Promise<{ body: Buffer; contentType: string } | null> {
  if (!UI_FILE.test(name) || name.includes('..')) return null;
  const contentType = CONTENT_TYPES[path.extname(name).toLowerCase()];
  if (!contentType) return null;
  try {
    return { body: await readFile(path.join(uiDir, name)), contentType };
  } catch {
    return null;
  }
}
