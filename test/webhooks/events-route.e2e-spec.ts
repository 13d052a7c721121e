import type { CreatedPortal } from '../../src/emulator';
import { EventVerifier } from '../../src/webhooks/event-verifier.service';
import {
  errorBody,
  formBody,
  genuineEventBody,
  Harness,
  installViaEvent,
  postEvent,
  startHarness,
  tableCounts,
} from './webhook-harness';

/**
 * POST /bitrix24/events is a route on the Fastify instance rather than a Nest controller: these
 * pin what it shares with every other route (the error format, the not-found answer, the HTTP
 * metrics), so that the shortcut changes nothing a client or an operator sees.
 */
describe('the /bitrix24/events route beside the Nest routes', () => {
  let h: Harness;
  let portal: CreatedPortal;

  beforeAll(async () => {
    h = await startHarness({ HTTP_BODY_LIMIT_BYTES: String(64 * 1024) });
    portal = await installViaEvent(h);
  });

  afterAll(async () => {
    await h?.close();
  });

  it.each([
    ['GET', '/bitrix24/events'],
    ['PUT', '/bitrix24/events'],
    ['PATCH', '/bitrix24/events'],
    ['DELETE', '/bitrix24/events'],
    ['OPTIONS', '/bitrix24/events'],
    ['POST', '/bitrix24/events/'],
    ['POST', '/bitrix24/EVENTS'],
    ['POST', '/bitrix24/events/extra'],
  ])('answers %s %s 404 not_found, as any unmatched route', async (method, path) => {
    const counts = await tableCounts(h);

    const response = await fetch(`${h.app.url}${path}`, {
      method,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: method === 'GET' ? undefined : genuineEventBody(portal, 'ONCRMDEALADD'),
    });

    expect(response.status).toBe(404);
    expect(await errorBody(response)).toEqual({
      error: { code: 'not_found', message: `Cannot ${method} ${path}` },
    });
    expect(await tableCounts(h)).toEqual(counts);
  });

  it('answers HEAD 404 with no body', async () => {
    const response = await fetch(`${h.app.url}/bitrix24/events`, { method: 'HEAD' });
    expect(response.status).toBe(404);
    expect(await response.text()).toBe('');
  });

  it('accepts a genuine event with a query string on the URL', async () => {
    const response = await postEvent(
      h,
      genuineEventBody(portal, 'ONCRMDEALADD', { data: { FIELDS: { ID: '5' } } }),
    );
    const withQuery = await fetch(`${h.app.url}/bitrix24/events?source=proxy`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: genuineEventBody(portal, 'ONCRMDEALADD', { data: { FIELDS: { ID: '6' } } }),
    });

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ outcome: 'stored' });
    expect(withQuery.status).toBe(200);
    expect(await withQuery.json()).toEqual({ outcome: 'stored' });
  });

  it('refuses an unverified, a malformed and an oversized body in the same format as a Nest route', async () => {
    const unverified = await postEvent(
      h,
      genuineEventBody(portal, 'ONCRMDEALADD', { auth: { application_token: 'forgedtoken' } }),
    );
    const malformed = await postEvent(h, formBody({ event: 'ONCRMDEALADD', auth: 'x' }));
    const big = 'a'.repeat(100 * 1024);
    const oversized = await postEvent(h, big);
    const oversizedAtNestRoute = await fetch(`${h.app.url}/bitrix24/install`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: big,
    });

    expect(unverified.status).toBe(401);
    expect(unverified.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await errorBody(unverified)).toEqual({
      error: { code: 'event_not_verified', message: 'The event could not be verified' },
    });
    expect(malformed.status).toBe(400);
    expect(malformed.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await errorBody(malformed)).toEqual({
      error: { code: 'malformed_event', message: 'auth must be an object' },
    });
    expect(oversized.status).toBe(413);
    expect(oversizedAtNestRoute.status).toBe(413);
    expect(await errorBody(oversized)).toEqual(await errorBody(oversizedAtNestRoute));
  });

  it('answers an unexpected failure 500 internal_error without its details, and logs it once', async () => {
    const verifier = h.app.app.get(EventVerifier);
    const verify = jest
      .spyOn(verifier, 'verify')
      .mockRejectedValueOnce(new Error('connection to the database lost: secret-detail'));
    try {
      const logsBefore = h.app.logs.length;

      const response = await postEvent(h, genuineEventBody(portal, 'ONOFFLINEEVENT'));

      expect(response.status).toBe(500);
      const body = await errorBody(response);
      expect(body).toEqual({
        error: { code: 'internal_error', message: 'Internal server error' },
      });
      const logged = h.app.logs
        .slice(logsBefore)
        .map((line) => JSON.parse(line) as { component?: string; msg?: string; err?: unknown })
        .filter((record) => record.msg === 'unexpected error');
      expect(logged).toHaveLength(1);
      expect(logged[0].component).toBe('http');
      expect(JSON.stringify(logged[0].err)).toContain('secret-detail');
    } finally {
      verify.mockRestore();
    }
    const after = await postEvent(h, genuineEventBody(portal, 'ONOFFLINEEVENT'));
    expect(await after.json()).toEqual({ outcome: 'drain_requested' });
  });

  it('counts its answers in the HTTP metrics under its route pattern, and its outcomes', async () => {
    await postEvent(h, genuineEventBody(portal, 'ONOFFLINEEVENT'));
    await postEvent(h, formBody({ event: 'ONCRMDEALADD' }));

    const metrics = await (await fetch(`${h.app.url}/metrics`)).text();

    expect(metrics).toMatch(
      /http_requests_total\{method="POST",route="\/bitrix24\/events",status_class="2xx"\} [1-9]/,
    );
    expect(metrics).toMatch(
      /http_requests_total\{method="POST",route="\/bitrix24\/events",status_class="4xx"\} [1-9]/,
    );
    expect(metrics).toMatch(
      /http_request_duration_seconds_count\{method="POST",route="\/bitrix24\/events",status_class="2xx"\} [1-9]/,
    );
    expect(metrics).toMatch(/bitrix24_webhook_events_total\{outcome="drain_requested"\} [1-9]/);
  });
});
