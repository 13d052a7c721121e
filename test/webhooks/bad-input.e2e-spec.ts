import { request } from 'node:http';
import {
  errorBody,
  genuineEventBody,
  Harness,
  installViaEvent,
  postEvent,
  startHarness,
  tableCounts,
} from './webhook-harness';

/**
 * Sends a body of `size` bytes with node:http, so a server that answers early (413) does not turn
 * into a client-side write error: we read whatever status came back.
 */
function postLarge(
  url: string,
  contentType: string,
  size: number,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      url,
      { method: 'POST', headers: { 'content-type': contentType, 'content-length': size } },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      },
    );
    outgoing.on('error', reject);
    const chunk = Buffer.alloc(64 * 1024, 'a');
    let sent = 0;
    const pump = (): void => {
      while (sent < size) {
        const piece = chunk.subarray(0, Math.min(chunk.length, size - sent));
        sent += piece.length;
        if (!outgoing.write(piece)) {
          outgoing.once('drain', pump);
          return;
        }
      }
      outgoing.end();
    };
    pump();
  });
}

describe('bad input at POST /bitrix24/events is refused, not fatal', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ HTTP_BODY_LIMIT_BYTES: String(64 * 1024) });
  });

  afterAll(async () => {
    await h?.close();
  });

  it.each([
    ['a form', 'application/x-www-form-urlencoded'],
    ['a JSON', 'application/json'],
  ])('answers an oversized %s body 413 in the error format', async (_kind, contentType) => {
    const counts = await tableCounts(h);

    const { status, body } = await postLarge(
      `${h.app.url}/bitrix24/events`,
      contentType,
      1024 * 1024,
    );

    expect(status).toBe(413);
    const parsed = JSON.parse(body) as { error: { code: string; message: string } };
    expect(parsed.error.code).toBe('payload_too_large');
    expect(typeof parsed.error.message).toBe('string');
    expect(await tableCounts(h)).toEqual(counts);
  });

  it.each([
    ['truncated JSON', '{"event":"ONCRMDEALADD","auth":{'],
    ['a bare word', 'ONCRMDEALADD'],
    ['a trailing comma', '{"event":"ONCRMDEALADD",}'],
  ])('answers malformed JSON (%s) 400 in the error format', async (_kind, body) => {
    const counts = await tableCounts(h);

    const response = await fetch(`${h.app.url}/bitrix24/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });

    expect(response.status).toBe(400);
    await errorBody(response);
    expect(await tableCounts(h)).toEqual(counts);
  });

  it('keeps answering: health and genuine events still work after the bad requests', async () => {
    const portal = await installViaEvent(h);
    await Promise.all(
      Array.from({ length: 20 }, () =>
        postLarge(`${h.app.url}/bitrix24/events`, 'application/json', 256 * 1024),
      ),
    );

    expect((await fetch(`${h.app.url}/health/live`)).status).toBe(200);
    const response = await postEvent(
      h,
      genuineEventBody(portal, 'ONCRMDEALADD', { data: { FIELDS: { ID: '1' } } }),
    );
    expect(response.status).toBe(200);
  });
});
