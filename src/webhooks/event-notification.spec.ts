import { createHash } from 'node:crypto';
import qs from 'qs';
import { parseBitrixForm } from '../bootstrap';
import { parseEventNotification, uninstallAsksForCleanup } from './event-notification';
import { EventNotVerifiedError, MalformedEventError } from './webhook.errors';

const AUTH = {
  access_token: 'access123',
  refresh_token: 'refresh456',
  member_id: 'a223c6b3710f85df22e9377d6c4f7553',
  application_token: '51856fefc120afa4b628cc82d3935cce',
  domain: 'example.bitrix24.com',
};

function form(body: Record<string, unknown>): Record<string, unknown> {
  return parseBitrixForm(qs.stringify(body));
}

describe('parseEventNotification', () => {
  it('reads a percent-encoded form body as Bitrix24 sends it', () => {
    const notification = parseEventNotification(
      form({
        event: 'ONCRMDEALUPDATE',
        event_handler_id: '12',
        data: { FIELDS: { ID: '5' } },
        ts: '1721305951',
        auth: AUTH,
      }),
    );
    expect(notification).toEqual({
      event: 'ONCRMDEALUPDATE',
      memberId: AUTH.member_id,
      applicationToken: AUTH.application_token,
      accessToken: undefined,
      serverEndpoint: undefined,
      deliveryDigest: createHash('sha256').update(AUTH.access_token).digest('hex'),
      refreshToken: AUTH.refresh_token,
      data: { FIELDS: { ID: '5' } },
      firedAt: new Date(1721305951 * 1000),
    });
  });

  it('digests the access token only of an event that may be stored', () => {
    const offline = parseEventNotification(form({ event: 'ONOFFLINEEVENT', auth: AUTH }));
    const online = parseEventNotification(form({ event: 'onCrmDealAdd', auth: AUTH }));

    expect(offline.deliveryDigest).toBeNull();
    expect(online.deliveryDigest).toBe(
      createHash('sha256').update(AUTH.access_token).digest('hex'),
    );
  });

  it('reads bracket keys that are not percent-encoded', () => {
    const body = parseBitrixForm(
      `event=ONOFFLINEEVENT&auth[member_id]=${AUTH.member_id}&auth[application_token]=${AUTH.application_token}`,
    );
    const notification = parseEventNotification(body);
    expect(notification.memberId).toBe(AUTH.member_id);
    expect(notification.data).toBeUndefined();
  });

  it('accepts a notification without data and without OAuth tokens (agents, robots)', () => {
    const notification = parseEventNotification({
      event: 'onCrmDealAdd',
      auth: { member_id: AUTH.member_id, application_token: AUTH.application_token },
    });
    expect(notification.event).toBe('ONCRMDEALADD');
    expect(notification.refreshToken).toBeUndefined();
    expect(notification.firedAt).toBeNull();
  });

  it('accepts JSON bodies with numeric ts and empty data', () => {
    const notification = parseEventNotification({
      event: 'ONOFFLINEEVENT',
      ts: 1721305951,
      data: [],
      auth: AUTH,
    });
    expect(notification.data).toEqual([]);
    expect(notification.firedAt?.getTime()).toBe(1721305951000);
  });

  it('keeps the access token of ONAPPUPDATE only, the one the portal is asked to confirm', () => {
    expect(parseEventNotification({ event: 'onAppUpdate', auth: AUTH }).accessToken).toBe(
      AUTH.access_token,
    );
  });

  it('accepts ONAPPPAYMENT without an application token, and no other event', () => {
    const tokenless: Record<string, unknown> = { ...AUTH };
    delete tokenless.application_token;
    expect(
      parseEventNotification({ event: 'ONAPPPAYMENT', auth: tokenless }).applicationToken,
    ).toBe('');
    expect(() => parseEventNotification({ event: 'ONCRMDEALADD', auth: tokenless })).toThrow(
      EventNotVerifiedError,
    );
  });

  it('never keeps the access token', () => {
    expect(JSON.stringify(parseEventNotification({ event: 'X', auth: AUTH }))).not.toContain(
      AUTH.access_token,
    );
  });

  it.each([
    ['no auth block', { event: 'ONCRMDEALADD' }],
    ['no member_id', { event: 'X', auth: { application_token: 'abc' } }],
    ['no application_token', { event: 'X', auth: { member_id: 'abc' } }],
    [
      'an empty application_token',
      { event: 'X', auth: { member_id: 'abc', application_token: '' } },
    ],
  ])('answers "not verified" for %s', (_case, body) => {
    expect(() => parseEventNotification(body)).toThrow(EventNotVerifiedError);
  });

  it.each([
    ['a string body', 'event=X'],
    ['an array body', [{ event: 'X' }]],
    ['no event', { auth: AUTH }],
    ['an array as event', { event: ['X', 'Y'], auth: AUTH }],
    ['an object as event', { event: { a: 'b' }, auth: AUTH }],
    ['a number as event', { event: 7, auth: AUTH }],
    ['an event name with spaces', { event: 'ON CRM', auth: AUTH }],
    ['a huge event name', { event: 'A'.repeat(101), auth: AUTH }],
    ['auth as a string', { event: 'X', auth: 'token' }],
    ['auth as an array', { event: 'X', auth: [AUTH] }],
    ['an array as member_id', { event: 'X', auth: { ...AUTH, member_id: ['a', 'b'] } }],
    ['a member_id with a slash', { event: 'X', auth: { ...AUTH, member_id: '../etc' } }],
    ['a 10 kB member_id', { event: 'X', auth: { ...AUTH, member_id: 'a'.repeat(10_000) } }],
    ['an object as token', { event: 'X', auth: { ...AUTH, application_token: { x: '1' } } }],
    ['a token with spaces', { event: 'X', auth: { ...AUTH, application_token: 'a b' } }],
    ['a 10 kB token', { event: 'X', auth: { ...AUTH, application_token: 'a'.repeat(10_000) } }],
    ['an array as refresh token', { event: 'X', auth: { ...AUTH, refresh_token: ['a'] } }],
    ['data as a string', { event: 'X', data: 'hello', auth: AUTH }],
    ['data as a number', { event: 'X', data: 5, auth: AUTH }],
    ['a NUL in data', { event: 'X', data: { a: 'x\u0000y' }, auth: AUTH }],
    ['a NUL in a data key', { event: 'X', data: { 'x\u0000': '1' }, auth: AUTH }],
    ['a lone surrogate in data', { event: 'X', data: { a: '\ud800' }, auth: AUTH }],
    ['ts that is not a number', { event: 'X', ts: 'yesterday', auth: AUTH }],
    ['ts as an array', { event: 'X', ts: ['1'], auth: AUTH }],
    ['event_handler_id as an array', { event: 'X', event_handler_id: ['1'], auth: AUTH }],
  ])('refuses %s as malformed', (_case, body) => {
    expect(() => parseEventNotification(body)).toThrow(MalformedEventError);
  });

  it('refuses JSON data nested deeper than 32 levels', () => {
    let data: Record<string, unknown> = { leaf: '1' };
    for (let level = 0; level < 40; level += 1) data = { nested: data };
    expect(() => parseEventNotification({ event: 'X', data, auth: AUTH })).toThrow(/nested deeper/);
  });
});

describe('uninstallAsksForCleanup', () => {
  it.each([
    [{ CLEAN: '1' }, true],
    [{ CLEAN: 1 }, true],
    [{ CLEAN: '0' }, false],
    [undefined, false],
  ])('reads data[CLEAN]=%j as %s', (data, expected) => {
    const notification = parseEventNotification({ event: 'ONAPPUNINSTALL', data, auth: AUTH });
    expect(uninstallAsksForCleanup(notification)).toBe(expected);
  });
});
