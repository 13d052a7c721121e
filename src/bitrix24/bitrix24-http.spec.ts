import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../config/app-config';
import { TRANSPORT_ERROR_CODES } from './bitrix24-api.error';
import { Bitrix24Http, redirectAsFailure } from './bitrix24-http';

/** A local server whose answer each test decides; it counts the requests it received. */
class LocalServer {
  received = 0;
  answer: (response: ServerResponse) => void = (response) => response.end('{}');
  private readonly server: Server = createServer(
    (request: IncomingMessage, response: ServerResponse) => {
      this.received += 1;
      request.resume();
      request.on('end', () => this.answer(response));
    },
  );

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/method`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

describe('Bitrix24Http', () => {
  const http = new Bitrix24Http(
    loadConfig({
      BITRIX24_CLIENT_ID: 'id',
      BITRIX24_CLIENT_SECRET: 'secret',
      BITRIX24_REQUEST_TIMEOUT_MS: '1000',
    }),
  );
  let server: LocalServer;
  let url: string;

  beforeEach(async () => {
    server = new LocalServer();
    url = await server.start();
  });

  afterEach(() => server.stop());

  it('returns a JSON answer with its status', async () => {
    server.answer = (response) => {
      response.statusCode = 401;
      response.end('{"error":"expired_token"}');
    };
    await expect(http.post(url, { json: { a: 1 } })).resolves.toEqual({
      kind: 'answer',
      status: 401,
      body: { error: 'expired_token' },
    });
  });

  it('reports a server that never answers as a timeout', async () => {
    server.answer = () => undefined;
    await expect(http.post(url, { json: {} })).resolves.toMatchObject({
      kind: 'transport_failure',
      code: TRANSPORT_ERROR_CODES.timeout,
    });
  });

  it("rejects with the caller's reason when the caller aborts mid-request, not as a timeout", async () => {
    server.answer = () => undefined;
    const caller = new AbortController();
    const reason = new Error('shutting down');
    setTimeout(() => caller.abort(reason), 50);
    await expect(http.post(url, { json: {} }, caller.signal)).rejects.toBe(reason);
  });

  it('sends nothing when the caller has already aborted', async () => {
    const caller = new AbortController();
    const reason = new Error('already stopped');
    caller.abort(reason);
    await expect(http.post(url, { json: {} }, caller.signal)).rejects.toBe(reason);
    expect(server.received).toBe(0);
  });

  it("leaves no listener on the caller's signal once the answer is read", async () => {
    const caller = new AbortController();
    const added: unknown[] = [];
    const removed: unknown[] = [];
    const add = caller.signal.addEventListener.bind(caller.signal);
    const remove = caller.signal.removeEventListener.bind(caller.signal);
    caller.signal.addEventListener = (type: string, listener: never, options?: never) => {
      added.push(listener);
      add(type, listener, options);
    };
    caller.signal.removeEventListener = (type: string, listener: never, options?: never) => {
      removed.push(listener);
      remove(type, listener, options);
    };
    await http.post(url, { json: {} }, caller.signal);
    await http.post(url, { json: {} }, caller.signal);
    expect(added).toHaveLength(2);
    expect(removed).toEqual(added);
  });

  it('answers a 302 as a redirect with its Location made absolute, without following it', async () => {
    server.answer = (response) => {
      response.statusCode = 302;
      response.setHeader('location', '/new.test/rest/app.info');
      response.end();
    };
    await expect(http.post(url, { json: { a: 1 } })).resolves.toEqual({
      kind: 'redirect',
      status: 302,
      location: new URL('/new.test/rest/app.info', url).href,
    });
    expect(server.received).toBe(1);
  });

  it('answers a redirect without Location with a null location', async () => {
    server.answer = (response) => {
      response.statusCode = 301;
      response.end();
    };
    await expect(http.post(url, { json: {} })).resolves.toEqual({
      kind: 'redirect',
      status: 301,
      location: null,
    });
  });

  it('turns a redirect into a REDIRECT transport failure for callers that do not follow it', () => {
    expect(
      redirectAsFailure({
        kind: 'redirect',
        status: 302,
        location: 'https://new.bitrix24.com/rest/x?auth=secret',
      }),
    ).toEqual({
      kind: 'transport_failure',
      code: TRANSPORT_ERROR_CODES.redirect,
      description: 'HTTP 302 redirect to https://new.bitrix24.com, not followed',
      status: 302,
    });
  });
});
