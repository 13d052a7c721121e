import type { CreatedPortal } from '../../src/emulator';
import {
  errorBody,
  formBody,
  genuineEventBody,
  Harness,
  installViaEvent,
  portalRow,
  postEvent,
  startHarness,
  tableCounts,
} from './webhook-harness';

interface HostileRequest {
  contentType: string;
  body: string;
  /** The status class expected: 400, 401, 413 or 415. */
  status: number;
}

/**
 * Every body carries the portal's genuine member_id and application token wherever the attack
 * leaves room for them, so a row written would be the hostile part getting through.
 */
function hostileBodies(portal: CreatedPortal): Record<string, HostileRequest> {
  const form = 'application/x-www-form-urlencoded';
  const json = 'application/json';
  const member = encodeURIComponent(portal.memberId);
  const token = encodeURIComponent(portal.applicationToken);
  const auth = `auth%5Bmember_id%5D=${member}&auth%5Bapplication_token%5D=${token}`;
  const jsonAuth = { member_id: portal.memberId, application_token: portal.applicationToken };
  const deal = 'data%5BFIELDS%5D%5BID%5D=1';
  return {
    'broken percent-encoding in the event name': {
      contentType: form,
      body: `event=ONCRMDEAL%E0%A4%A&${deal}&${auth}`,
      status: 400,
    },
    'invalid UTF-8 as member_id': {
      contentType: form,
      body: `event=ONCRMDEALADD&auth%5Bmember_id%5D=%FF%FE&auth%5Bapplication_token%5D=${token}`,
      status: 400,
    },
    'bracket keys nested ten levels deep': {
      contentType: form,
      body: `event=ONCRMDEALADD&data[a][b][c][d][e][f][g][h][i][j]=1&${auth}`,
      status: 400,
    },
    'an array where the event name belongs': {
      contentType: form,
      body: `event[]=ONCRMDEALADD&event[]=ONCRMDEALUPDATE&${deal}&${auth}`,
      status: 400,
    },
    'the event name given twice': {
      contentType: form,
      body: `event=ONCRMDEALADD&event=ONCRMDEALDELETE&${deal}&${auth}`,
      status: 400,
    },
    'an array where member_id belongs': {
      contentType: form,
      body: `event=ONCRMDEALADD&${deal}&auth[member_id][]=${member}&auth[application_token]=${token}`,
      status: 400,
    },
    'an object where the application token belongs': {
      contentType: form,
      body: `event=ONCRMDEALADD&${deal}&auth[member_id]=${member}&auth[application_token][x]=${token}`,
      status: 400,
    },
    'a 200 kB event name': {
      contentType: form,
      body: `event=${'A'.repeat(200_000)}&${deal}&${auth}`,
      status: 400,
    },
    'a 100 kB member_id': {
      contentType: form,
      body: `event=ONCRMDEALADD&auth[member_id]=${'a'.repeat(100_000)}&auth[application_token]=${token}`,
      status: 400,
    },
    'no auth at all': {
      contentType: form,
      body: `event=ONCRMDEALADD&${deal}`,
      status: 401,
    },
    'auth as a plain string': {
      contentType: form,
      body: `event=ONCRMDEALADD&${deal}&auth=${token}`,
      status: 400,
    },
    'the token smuggled through __proto__': {
      contentType: form,
      body: `event=ONCRMDEALADD&${deal}&auth[member_id]=${member}&__proto__[application_token]=${token}`,
      status: 400,
    },
    'the token smuggled through auth[__proto__]': {
      contentType: form,
      body: `event=ONCRMDEALADD&${deal}&auth[member_id]=${member}&auth[__proto__][application_token]=${token}`,
      status: 400,
    },
    'the token smuggled through constructor[prototype]': {
      contentType: form,
      body: `event=ONCRMDEALADD&${deal}&auth[member_id]=${member}&constructor[prototype][application_token]=${token}`,
      status: 400,
    },
    'a JSON __proto__ key': {
      contentType: json,
      body: `{"event":"ONCRMDEALADD","data":{"FIELDS":{"ID":"1"}},"auth":{"member_id":"${portal.memberId}","__proto__":{"application_token":"${portal.applicationToken}"}}}`,
      status: 400,
    },
    'a number as the event name (JSON)': {
      contentType: json,
      body: JSON.stringify({ event: 1234, data: { FIELDS: { ID: '1' } }, auth: jsonAuth }),
      status: 400,
    },
    'a number as member_id (JSON)': {
      contentType: json,
      body: JSON.stringify({
        event: 'ONCRMDEALADD',
        auth: { member_id: 42, application_token: portal.applicationToken },
      }),
      status: 400,
    },
    'a string as data (JSON)': {
      contentType: json,
      body: JSON.stringify({ event: 'ONCRMDEALADD', data: 'DROP TABLE', auth: jsonAuth }),
      status: 400,
    },
    'a NUL character inside data (JSON)': {
      contentType: json,
      body: JSON.stringify({
        event: 'ONCRMDEALADD',
        data: { FIELDS: { ID: '1\u0000' } },
        auth: jsonAuth,
      }),
      status: 400,
    },
    'a lone surrogate inside data (JSON)': {
      contentType: json,
      body: `{"event":"ONCRMDEALADD","data":{"FIELDS":{"ID":"\\ud800"}},"auth":${JSON.stringify(jsonAuth)}}`,
      status: 400,
    },
    'JSON data nested 40 levels deep': {
      contentType: json,
      body: `{"event":"ONCRMDEALADD","data":${'{"a":'.repeat(40)}1${'}'.repeat(40)},"auth":${JSON.stringify(jsonAuth)}}`,
      status: 400,
    },
    'a JSON array instead of an object': {
      contentType: json,
      body: JSON.stringify([{ event: 'ONCRMDEALADD', auth: jsonAuth }]),
      status: 400,
    },
    'SQL in the event name': {
      contentType: form,
      body: `event=${encodeURIComponent("ONCRMDEALADD';DROP TABLE portals;--")}&${deal}&${auth}`,
      status: 400,
    },
    'SQL in member_id': {
      contentType: form,
      body: `event=ONCRMDEALADD&auth[member_id]=${encodeURIComponent("' OR '1'='1")}&auth[application_token]=${token}`,
      status: 400,
    },
    '2,500 form parameters': {
      contentType: form,
      body: `event=ONCRMDEALADD&${auth}&${Array.from({ length: 2500 }, (_, index) => `p${index}=1`).join('&')}`,
      status: 400,
    },
    'an array index beyond the array limit': {
      contentType: form,
      body: `event=ONCRMDEALADD&data[FIELDS][5000]=1&${auth}`,
      status: 400,
    },
    'an array as ts': {
      contentType: form,
      body: `event=ONCRMDEALADD&${deal}&ts[]=1&${auth}`,
      status: 400,
    },
    'a plain-text body': {
      contentType: 'text/plain',
      body: `event=ONCRMDEALADD&${deal}&${auth}`,
      status: 400,
    },
    'an XML body': {
      contentType: 'application/xml',
      body: '<event>ONCRMDEALADD</event>',
      status: 415,
    },
    'an empty form body': {
      contentType: form,
      body: '',
      status: 400,
    },
  };
}

describe('hostile bodies at POST /bitrix24/events', () => {
  let h: Harness;
  let portal: CreatedPortal;

  beforeAll(async () => {
    h = await startHarness();
    portal = await installViaEvent(h);
  });

  afterAll(async () => {
    await h?.close();
  });

  it('has a table of at least 15 hostile bodies', () => {
    expect(Object.keys(hostileBodies({} as CreatedPortal)).length).toBeGreaterThanOrEqual(15);
  });

  it.each(Object.keys(hostileBodies({} as CreatedPortal)))(
    'refuses %s with a 4xx in the error format and writes nothing',
    async (name) => {
      const request = hostileBodies(portal)[name];
      const countsBefore = await tableCounts(h);
      const portalBefore = await portalRow(h, portal.memberId);

      const response = await fetch(`${h.app.url}/bitrix24/events`, {
        method: 'POST',
        headers: { 'content-type': request.contentType },
        body: request.body,
      });

      expect(response.status).toBe(request.status);
      await errorBody(response);
      expect(await tableCounts(h)).toEqual(countsBefore);
      expect(await portalRow(h, portal.memberId)).toEqual(portalBefore);
    },
  );

  it('keeps serving genuine events after all of them', async () => {
    const response = await postEvent(
      h,
      genuineEventBody(portal, 'ONCRMDEALADD', { data: { FIELDS: { ID: '77' } } }),
    );
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ outcome: 'stored' });
    const control = await postEvent(h, formBody({ event: 'ONCRMDEALADD' }));
    expect(control.status).toBe(401);
  });
});
