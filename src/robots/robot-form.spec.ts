import { parseRobotForm, robotEventName } from './robot-form';
import { MalformedRobotRunError } from './robots.errors';

const FORM = {
  workflow_id: '55c1dc1c3f0d75.78875596',
  code: 'send_invoice',
  document_id: ['crm', 'CCrmDocumentDeal', 'DEAL_12'],
  document_type: ['crm', 'CCrmDocumentDeal', 'DEAL'],
  event_token: '55c1dc1c3f0d75.78875596|A51601_82584|hsyUws1j.47dd5d88',
  properties: { amount: '12.5' },
  use_subscription: 'Y',
  timeout_duration: '3600',
  ts: '1764700000',
  auth: { member_id: 'm', application_token: 't', access_token: 'secret' },
};

describe('robot POST fields', () => {
  it('keeps the run without its auth block', () => {
    expect(parseRobotForm(FORM, 'send_invoice')).toEqual({
      workflow_id: FORM.workflow_id,
      code: 'send_invoice',
      document_id: FORM.document_id,
      document_type: FORM.document_type,
      event_token: FORM.event_token,
      properties: { amount: '12.5' },
      use_subscription: 'Y',
      timeout_duration: 3600,
    });
  });

  it('takes anything but Y as not waiting, and a missing timeout as none', () => {
    const run = parseRobotForm(
      { ...FORM, use_subscription: undefined, timeout_duration: undefined },
      'send_invoice',
    );
    expect(run.use_subscription).toBe('N');
    expect(run.timeout_duration).toBe(0);
  });

  it.each([
    [{ event_token: undefined }, 'event_token is required'],
    [{ event_token: 'with space' }, 'event_token is malformed'],
    [{ code: 'other_robot' }, 'code does not match the handler URL'],
    [{ properties: 'text' }, 'properties must be an object'],
    [{ document_id: [1, 2] }, 'document_id must be a list of strings'],
    [{ timeout_duration: '-5' }, 'timeout_duration must be a number of seconds'],
  ])('refuses %j', (change, message) => {
    expect(() => parseRobotForm({ ...FORM, ...change }, 'send_invoice')).toThrow(
      new MalformedRobotRunError(message),
    );
  });

  it('stores runs under an upper-case event name per code', () => {
    expect(robotEventName('send_invoice')).toBe('ROBOT:SEND_INVOICE');
  });
});
