import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply } from 'fastify';

export const ADMIN_CONSOLE_PATH = '/admin/ui';

/**
 * The page holds no data, so it is served without the token; everything it shows comes from the
 * admin API, called from the browser with the token the operator typed. The headers keep the page
 * to its own scripts and styles, its own origin for requests, and out of every frame.
 */
export const ADMIN_CONSOLE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; '),
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=()',
};

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'application/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** The chart library, served from its npm package under the console's own path. */
const VENDOR_FILES: Record<string, string> = {
  'vendor/uPlot.iife.min.js': 'dist/uPlot.iife.min.js',
  'vendor/uPlot.min.css': 'dist/uPlot.min.css',
};

interface ConsoleFile {
  body: Buffer;
  contentType: string;
}

/** The package root: the nearest folder up from here with a package.json (src/ or dist/src/). */
function packageRoot(): string {
  let directory = __dirname;
  while (!existsSync(path.join(directory, 'package.json'))) {
    const parent = path.dirname(directory);
    if (parent === directory) throw new Error('admin console: no package.json above ' + __dirname);
    directory = parent;
  }
  return directory;
}

/** Where the console's static files live: `public/admin-ui` of the package. */
export function adminConsoleDirectory(): string {
  return path.join(packageRoot(), 'public', 'admin-ui');
}

/**
 * Every file the console serves, read once at start: the folder's own files by name (no
 * sub-paths, so nothing outside it can be named) and the chart library's two files.
 */
function loadFiles(directory: string): Map<string, ConsoleFile> {
  const files = new Map<string, ConsoleFile>();
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const contentType = CONTENT_TYPES[path.extname(entry.name)];
    if (!entry.isFile() || !contentType) continue;
    files.set(entry.name, { body: readFileSync(path.join(directory, entry.name)), contentType });
  }
  const uplotRoot = path.dirname(require.resolve('uplot/package.json'));
  for (const [name, file] of Object.entries(VENDOR_FILES)) {
    files.set(name, {
      body: readFileSync(path.join(uplotRoot, file)),
      contentType: CONTENT_TYPES[path.extname(file)],
    });
  }
  return files;
}

/** Serves the admin console at /admin/ui (the page) and /admin/ui/<file> (its assets). */
export function setupAdminConsole(
  app: NestFastifyApplication,
  directory = adminConsoleDirectory(),
): void {
  const files = loadFiles(directory);
  const page = files.get('index.html');
  if (!page) throw new Error(`admin console: no index.html in ${directory}`);
  const fastify = app.getHttpAdapter().getInstance();

  const send = (reply: FastifyReply, file: ConsoleFile, cache: string): FastifyReply =>
    reply
      .headers(ADMIN_CONSOLE_HEADERS)
      .header('content-type', file.contentType)
      .header('cache-control', cache)
      .send(file.body);

  fastify.get(ADMIN_CONSOLE_PATH, (_request, reply) => send(reply, page, 'no-store'));
  fastify.get(`${ADMIN_CONSOLE_PATH}/`, (_request, reply) => send(reply, page, 'no-store'));
  for (const [name, file] of files) {
    if (name === 'index.html') continue;
    fastify.get(`${ADMIN_CONSOLE_PATH}/${name}`, (_request, reply) =>
      send(reply, file, 'no-cache'),
    );
  }
}
