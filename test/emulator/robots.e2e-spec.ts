import { createServer, type Server } from 'node:http';
import qs from 'qs';
import { startEmulator, type RunningEmulator } from '../../src/emulator';

const CLIENT = { clientId: 'test.app', clientSecret: 'test-secret', scope: 'crm,bizproc' };

interface Envelope<T> {
  result?: T;
  error?: string;
  error_description?: string;
}

let emulator: RunningEmulator;
let handlerServer: Server;
let handlerUrl: string;
const received: { url: string; contentType: string; body: string }[] = [];

beforeAll(async () => {
  emulator = await startEmulator(CLIENT);
  handlerServer = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      received.push({
        url: request.url ?? '',
        contentType: request.headers['content-type'] ?? '',
        body,
      });
      response.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => handlerServer.listen(0, '127.0.0.1', resolve));
  const address = handlerServer.address() as { port: number };
  handlerUrl = `http://127.0.0.1:${address.port}/bitrix24/robots`;
});

afterAll(async () => {
  await emulator.close();
  await new Promise((resolve) => handlerServer.close(resolve));
});

async function installedPortal() {
  const portal = await emulator.control.createPortal();
  const { form } = await emulator.control.install(portal.memberId, { mode: 'ui' });
  await emulator.control.finishInstall(portal.memberId);
  const call = async <T>(method: string, params: Record<string, unknown> = {}) => {
    const response = await fetch(`${portal.clientEndpoint}${method}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...params, auth: form.AUTH_ID }),
    });
    return { status: response.status, body: (await response.json()) as Envelope<T> };
  };
  return { ...portal, call };
}

const ROBOT = {
  CODE: 'send_invoice',
  NAME: 'Send the invoice',
  AUTH_USER_ID: 1,
  USE_SUBSCRIPTION: 'Y',
  PROPERTIES: {
    amount: { Name: 'Amount', Type: 'double', Required: 'Y' },
    channel: { Name: 'Channel', Type: 'select', Options: { mail: 'E-mail' }, Default: 'mail' },
  },
  RETURN_PROPERTIES: { invoiceId: { Name: 'Invoice', Type: 'string' } },
};

describe('bizproc robots on the emulated portal', () => {
  it('registers a CODE once, updates and deletes it, and lists only codes', async () => {
    const portal = await installedPortal();
    const handler = `${handlerUrl}/send_invoice`;
    expect((await portal.call('bizproc.robot.add', { ...ROBOT, HANDLER: handler })).body).toEqual(
      expect.objectContaining({ result: true }),
    );
    const again = await portal.call('bizproc.robot.add', { ...ROBOT, HANDLER: handler });
    expect(again.status).toBe(400);
    expect(again.body).toMatchObject({
      error: 'ERROR_ACTIVITY_ALREADY_INSTALLED',
      error_description: 'Activity or Robot already installed!',
    });
    expect((await portal.call<string[]>('bizproc.robot.list')).body.result).toEqual([
      'send_invoice',
    ]);

    await portal.call('bizproc.robot.update', {
      CODE: 'send_invoice',
      FIELDS: { PROPERTIES: { note: { Name: 'Note', Type: 'text' } } },
    });
    const [robot] = await emulator.control.robots(portal.memberId);
    expect(robot.properties).toEqual({ note: { NAME: 'Note', TYPE: 'text' } });

    expect((await portal.call('bizproc.robot.delete', { CODE: 'send_invoice' })).body.result).toBe(
      true,
    );
    const missing = await portal.call('bizproc.robot.delete', { CODE: 'send_invoice' });
    expect(missing.body).toMatchObject({
      error: 'ERROR_ACTIVITY_NOT_FOUND',
      error_description: 'Activity or Robot not found!',
    });
    expect(
      (await portal.call('bizproc.robot.update', { CODE: 'send_invoice', FIELDS: { NAME: 'x' } }))
        .body.error,
    ).toBe('ERROR_ACTIVITY_NOT_FOUND');
  });

  it('refuses codes, property keys and handlers Bitrix24 refuses', async () => {
    const portal = await installedPortal();
    const handler = `${handlerUrl}/x`;
    const refusal = async (params: Record<string, unknown>) =>
      (await portal.call('bizproc.robot.add', { ...ROBOT, HANDLER: handler, ...params })).body;
    expect(await refusal({ CODE: '' })).toMatchObject({
      error: 'ERROR_ACTIVITY_VALIDATION_FAILURE',
      error_description: 'Empty activity code!',
    });
    expect(await refusal({ CODE: 'a b' })).toMatchObject({
      error_description: 'Wrong activity code!',
    });
    expect(await refusal({ PROPERTIES: { '1st': { Name: 'x' } } })).toMatchObject({
      error_description: 'Wrong property key 1st!',
    });
    expect(await refusal({ PROPERTIES: { first: { Type: 'string' } } })).toMatchObject({
      error_description: 'Empty property NAME first!',
    });
    expect(await refusal({ HANDLER: 'ftp://example.com/x' })).toMatchObject({
      error: 'ERROR_UNSUPPORTED_PROTOCOL',
    });
    expect(await refusal({ HANDLER: 'not a url' })).toMatchObject({
      error: 'ERROR_WRONG_HANDLER_URL',
    });
    expect((await portal.call<string[]>('bizproc.robot.list')).body.result).toEqual([]);
  });

  it('posts a run to the handler as a form and takes one answer per event_token', async () => {
    const portal = await installedPortal();
    await portal.call('bizproc.robot.add', { ...ROBOT, HANDLER: `${handlerUrl}/send_invoice` });
    const run = await emulator.control.runRobot(portal.memberId, 'send_invoice', {
      documentId: 'DEAL_7',
      properties: { amount: 12.5 },
    });
    expect(run.delivered.status).toBe(200);
    const post = received.find((request) =>
      request.body.includes(encodeURIComponent(run.eventToken)),
    );
    expect(post?.url).toBe('/bitrix24/robots/send_invoice');
    expect(post?.contentType).toBe('application/x-www-form-urlencoded');
    const form = qs.parse(post?.body ?? '') as Record<string, unknown>;
    expect(form).toMatchObject({
      workflow_id: run.workflowId,
      code: 'send_invoice',
      document_id: ['crm', 'CCrmDocumentDeal', 'DEAL_7'],
      document_type: ['crm', 'CCrmDocumentDeal', 'DEAL'],
      event_token: run.eventToken,
      properties: { amount: '12.5', channel: 'mail' },
      use_subscription: 'Y',
      timeout_duration: '0',
      auth: { member_id: portal.memberId, application_token: portal.applicationToken },
    });
    expect(typeof form.ts).toBe('string');

    const answer = { EVENT_TOKEN: run.eventToken, RETURN_VALUES: { invoiceId: 'INV-1' } };
    expect((await portal.call('bizproc.event.send', answer)).body.result).toBe(true);
    const second = await portal.call('bizproc.event.send', answer);
    expect(second.body.error).toBe('ACCESS_DENIED');
    const unknown = await portal.call('bizproc.event.send', { EVENT_TOKEN: 'made-up' });
    expect(unknown.body.error).toBe('ACCESS_DENIED');
    expect(await emulator.control.robotAnswers(portal.memberId)).toEqual([
      expect.objectContaining({
        eventToken: run.eventToken,
        code: 'send_invoice',
        returnValues: { invoiceId: 'INV-1' },
      }),
    ]);
  });

  it('refuses an answer to a robot that does not wait, or whose wait ran out', async () => {
    const portal = await installedPortal();
    await portal.call('bizproc.robot.add', { ...ROBOT, HANDLER: `${handlerUrl}/send_invoice` });
    const notWaiting = await emulator.control.runRobot(portal.memberId, 'send_invoice', {
      useSubscription: false,
    });
    expect(
      (await portal.call('bizproc.event.send', { EVENT_TOKEN: notWaiting.eventToken })).body.error,
    ).toBe('ACCESS_DENIED');
    const brief = await emulator.control.runRobot(portal.memberId, 'send_invoice', {
      timeoutDuration: 60,
    });
    await emulator.control.advanceClock(61);
    expect(
      (await portal.call('bizproc.event.send', { EVENT_TOKEN: brief.eventToken })).body.error,
    ).toBe('ACCESS_DENIED');
    expect(await emulator.control.robotAnswers(portal.memberId)).toEqual([]);
  });

  it('takes the robots off the list when the app is updated', async () => {
    const portal = await installedPortal();
    await portal.call('bizproc.robot.add', { ...ROBOT, HANDLER: `${handlerUrl}/send_invoice` });
    await emulator.control.publishVersion(portal.memberId);
    expect(await emulator.control.robots(portal.memberId)).toEqual([]);
  });
});
