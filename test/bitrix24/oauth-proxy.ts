import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** An OAuth server in front of the emulator's, that can hold requests and alter its answers. */
export interface OAuthProxy {
  url: string;
  /** Resolves when a token request has arrived (and, with `hold`, is being held). */
  arrived: Promise<void>;
  /** Lets held requests (and any later ones) through. */
  release(): void;
  close(): Promise<void>;
}

export async function startOAuthProxy(
  targetUrl: string,
  options: {
    /** Hold every request until release(). */
    hold?: boolean;
    /** Rewrites each successful (200) answer before the app sees it. */
    rewrite?: (answer: Record<string, unknown>) => Record<string, unknown>;
  } = {},
): Promise<OAuthProxy> {
  let arrive!: () => void;
  let release!: () => void;
  const arrived = new Promise<void>((resolve) => (arrive = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  if (!options.hold) release();
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      void (async () => {
        arrive();
        await released;
        const forwarded = await fetch(`${targetUrl}${request.url}`, {
          method: request.method,
          headers: { 'content-type': request.headers['content-type'] ?? 'text/plain' },
          body: Buffer.concat(chunks),
        });
        const text = await forwarded.text();
        const body =
          forwarded.status === 200 && options.rewrite
            ? JSON.stringify(options.rewrite(JSON.parse(text) as Record<string, unknown>))
            : text;
        response.writeHead(forwarded.status, { 'content-type': 'application/json' });
        response.end(body);
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    arrived,
    release,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
