import { Bitrix24ApiError, TRANSPORT_ERROR_CODES } from './bitrix24-api.error';
import { redirectTarget } from './portal-redirect';

const OLD = 'https://old.bitrix24.com/rest';
const redirect = (location: string | null, status = 302) =>
  ({ kind: 'redirect', status, location }) as const;

function refusal(result: string | Bitrix24ApiError): Bitrix24ApiError {
  if (typeof result === 'string') throw new Error(`expected a refusal, got ${result}`);
  return result;
}

describe('redirectTarget', () => {
  it("re-sends to the new host's REST base, whatever method path the Location carries", () => {
    expect(
      redirectTarget(redirect('https://new.bitrix24.com/rest/app.info'), OLD, false, 'app.info'),
    ).toBe('https://new.bitrix24.com/rest');
    expect(redirectTarget(redirect('https://new.bitrix24.com/rest/'), OLD, false, 'app.info')).toBe(
      'https://new.bitrix24.com/rest',
    );
  });

  it('keeps a path before /rest (the emulator serves each portal under its domain)', () => {
    expect(
      redirectTarget(
        redirect('http://127.0.0.1:4001/new.test/rest/app.info'),
        'http://127.0.0.1:4000/old.test/rest',
        false,
        'app.info',
      ),
    ).toBe('http://127.0.0.1:4001/new.test/rest');
  });

  it('refuses a second redirect in one call as a loop', () => {
    const error = refusal(
      redirectTarget(redirect('https://third.bitrix24.com/rest/x'), OLD, true, 'app.info'),
    );
    expect(error.bitrixCode).toBe(TRANSPORT_ERROR_CODES.redirectLoop);
    expect(error.category).toBe('caller');
  });

  it('refuses a redirect within the host just asked (an expired self-hosted license)', () => {
    const error = refusal(
      redirectTarget(
        redirect('https://old.bitrix24.com/bitrix/coupon_activation.php'),
        OLD,
        false,
        'app.info',
      ),
    );
    expect(error.bitrixCode).toBe(TRANSPORT_ERROR_CODES.redirect);
    expect(
      refusal(redirectTarget(redirect('https://old.bitrix24.com/b/rest/x'), OLD, false, 'x'))
        .bitrixCode,
    ).toBe(TRANSPORT_ERROR_CODES.redirect);
  });

  it.each([
    ['no Location', null],
    ['a non-http Location', 'ftp://new.bitrix24.com/rest/app.info'],
    ['a javascript: Location', 'javascript:alert(1)'],
    ['a downgrade to http', 'http://new.bitrix24.com/rest/app.info'],
    ['a Location outside the REST path', 'https://new.bitrix24.com/login'],
  ])('refuses %s, not retried', (_case, location) => {
    const error = refusal(redirectTarget(redirect(location), OLD, false, 'app.info'));
    expect(error.bitrixCode).toBe(TRANSPORT_ERROR_CODES.redirect);
    expect(error.category).toBe('caller');
    expect(error.httpStatus).toBe(302);
  });
});
