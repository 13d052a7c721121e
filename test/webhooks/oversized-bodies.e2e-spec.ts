import { request } from 'node:http';
import { bearer } from '../admin/admin-routes';
import { TEST_ADMIN_TOKEN } from '../support/test-app';
import { Harness, startHarness, tableCounts } from './webhook-harness';

const TEN_MB = 10 * 1024 * 1024;
const ATTEMPTS = 10;

interface Answer {
  status: number;
  body: string;
  /** Bytes of the body the client handed to the socket. */
  sent: number;
}

/**
 * Writes the whole body with node:http, as a client that does not look at the answer before it
 * has finished sending. Any socket error (EPIPE, ECONNRESET) rejects: that is what a client sees
 * when the server closes on it mid-upload instead of letting it read the 413.
 */
function postWholeBody(
  url: string,
  headers: Record<string, string>,
  size: number,
  filler: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let answer: Omit<Answer, 'sent'> | undefined;
    let finished = false;
    // Done only when the answer is read and the whole body went out, so a reset after the
    // answer still fails the request.
    const settle = (): void => {
      if (answer && finished) resolve({ ...answer, sent });
    };
    const outgoing = request(
      url,
      { method: 'POST', headers: { ...headers, 'content-length': String(size) } },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => {
          answer = { status: response.statusCode ?? 0, body };
          settle();
        });
        response.on('error', reject);
      },
    );
    outgoing.on('error', (error) =>
      reject(new Error(`after ${sent} of ${size} bytes: ${error.message}`)),
    );
    outgoing.on('finish', () => {
      finished = true;
      settle();
    });
    const chunk = Buffer.alloc(64 * 1024, filler);
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

function expectReadable413(answer: Answer): void {
  expect(answer.status).toBe(413);
  expect(answer.sent).toBe(TEN_MB);
  const parsed = JSON.parse(answer.body) as { error: { code: string; message: string } };
  expect(parsed.error.code).toBe('payload_too_large');
  expect(typeof parsed.error.message).toBe('string');
}

describe('a 10 MB body gets a readable 413, never a reset', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
  });

  afterAll(async () => {
    await h?.close();
  });

  it.each([
    ['JSON', 'application/json', '1'],
    ['form', 'application/x-www-form-urlencoded', 'a'],
  ])('answers %s at POST /bitrix24/events 413 every time', async (_kind, contentType, filler) => {
    const counts = await tableCounts(h);
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      expectReadable413(
        await postWholeBody(
          `${h.app.url}/bitrix24/events`,
          { 'content-type': contentType },
          TEN_MB,
          filler,
        ),
      );
    }
    expect(await tableCounts(h)).toEqual(counts);
  });

  it('answers ten concurrent uploads of each kind 413', async () => {
    const answers = await Promise.all(
      ['application/json', 'application/x-www-form-urlencoded'].flatMap((contentType) =>
        Array.from({ length: ATTEMPTS }, () =>
          postWholeBody(
            `${h.app.url}/bitrix24/install`,
            { 'content-type': contentType },
            TEN_MB,
            'a',
          ),
        ),
      ),
    );
    answers.forEach(expectReadable413);
  });

  it('answers a 10 MB JSON body at an admin route 413 too', async () => {
    for (let attempt = 0; attempt < 3; attempt++) {
      expectReadable413(
        await postWholeBody(
          `${h.app.url}/admin/portals/a1b2c3d4e5f60718293a4b5c6d7e8f90/drain`,
          { 'content-type': 'application/json', ...bearer(TEST_ADMIN_TOKEN) },
          TEN_MB,
          '1',
        ),
      );
    }
  });

  it('keeps serving after the refused uploads', async () => {
    expect((await fetch(`${h.app.url}/health/live`)).status).toBe(200);
  });
});
