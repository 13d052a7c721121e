import type { RobotDeclaration } from './bitrix24-robot.decorator';
import { robotDigest, robotFields } from './robot-definition';

const DECLARATION: RobotDeclaration = {
  code: 'send_invoice',
  name: 'Send the invoice',
  useSubscription: true,
  properties: {
    channel: { name: 'Channel', type: 'select', options: { mail: 'E-mail' }, default: 'mail' },
    amount: { name: 'Amount', type: 'double', required: true },
  },
  returnProperties: { invoiceId: { name: 'Invoice', type: 'string' } },
};

describe('robot fields and digest', () => {
  it('names the fields and property keys as Bitrix24 takes them', () => {
    expect(robotFields(DECLARATION, 'https://app.example/bitrix24/robots/send_invoice')).toEqual({
      HANDLER: 'https://app.example/bitrix24/robots/send_invoice',
      AUTH_USER_ID: 1,
      NAME: 'Send the invoice',
      USE_SUBSCRIPTION: 'Y',
      PROPERTIES: {
        channel: {
          Name: 'Channel',
          Type: 'select',
          Options: { mail: 'E-mail' },
          Required: 'N',
          Multiple: 'N',
          Default: 'mail',
        },
        amount: { Name: 'Amount', Type: 'double', Required: 'Y', Multiple: 'N' },
      },
      RETURN_PROPERTIES: {
        invoiceId: { Name: 'Invoice', Type: 'string', Required: 'N', Multiple: 'N' },
      },
    });
  });

  it('leaves USE_SUBSCRIPTION to the user when the declaration does not say', () => {
    const fields = robotFields({ ...DECLARATION, useSubscription: undefined }, 'https://a.b/c');
    expect(fields).not.toHaveProperty('USE_SUBSCRIPTION');
  });

  it('digests the same fields the same way whatever their order, and a change differently', () => {
    const fields = robotFields(DECLARATION, 'https://a.b/c');
    const reordered = Object.fromEntries(Object.entries(fields).reverse());
    expect(robotDigest(reordered)).toBe(robotDigest(fields));
    const changed = robotFields(
      { ...DECLARATION, properties: { amount: { name: 'Amount', type: 'int' } } },
      'https://a.b/c',
    );
    expect(robotDigest(changed)).not.toBe(robotDigest(fields));
    expect(robotDigest(robotFields(DECLARATION, 'https://other.host/c'))).not.toBe(
      robotDigest(fields),
    );
  });
});
