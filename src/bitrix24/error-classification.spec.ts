import { TRANSPORT_ERROR_CODES } from './bitrix24-api.error';
import { classifyOAuthError, classifyRestError, statusForPortalGone } from './error-classification';

describe('classifyRestError', () => {
  it.each([
    ['QUERY_LIMIT_EXCEEDED', 503, 'retryable'],
    ['OVERLOAD_LIMIT', 503, 'retryable'],
    ['OPERATION_TIME_LIMIT', 429, 'retryable'],
    ['INTERNAL_SERVER_ERROR', 500, 'retryable'],
    [TRANSPORT_ERROR_CODES.network, 0, 'retryable'],
    [TRANSPORT_ERROR_CODES.timeout, 0, 'retryable'],
    [TRANSPORT_ERROR_CODES.invalidResponse, 502, 'retryable'],
    [TRANSPORT_ERROR_CODES.invalidResponse, 200, 'caller'],
    ['expired_token', 401, 'auth'],
    ['invalid_token', 401, 'auth'],
    ['NO_AUTH_FOUND', 401, 'auth'],
    ['PORTAL_DELETED', 403, 'portal_gone'],
    ['PORTAL_DELETED', 500, 'portal_gone'],
    ['APPLICATION_NOT_FOUND', 401, 'portal_gone'],
    ['PAYMENT_REQUIRED', 402, 'portal_gone'],
    ['WRONG_LICENSE', 403, 'caller'],
    ['ACCESS_DENIED', 403, 'caller'],
    ['insufficient_scope', 401, 'caller'],
    ['ERROR_CORE', 200, 'caller'],
    ['ERROR_ARGUMENT', 400, 'caller'],
    ['ERROR_METHOD_NOT_FOUND', 404, 'caller'],
    ['SOMETHING_NEW', 400, 'caller'],
    ['SOMETHING_NEW', 502, 'retryable'],
  ] as const)('%s with HTTP %i is %s', (code, status, category) => {
    expect(classifyRestError(code, status)).toBe(category);
  });

  it('goes by the error code, not the status: a documented caller error on a 5xx is not retried', () => {
    expect(classifyRestError('ERROR_ARGUMENT', 500)).toBe('caller');
    expect(classifyRestError('QUERY_LIMIT_EXCEEDED', 200)).toBe('retryable');
  });
});

describe('classifyOAuthError', () => {
  it.each([
    ['invalid_grant', 400, 'auth'],
    ['PAYMENT_REQUIRED', 400, 'portal_gone'],
    ['invalid_client', 400, 'caller'],
    ['invalid_request', 400, 'caller'],
    [TRANSPORT_ERROR_CODES.network, 0, 'retryable'],
    [TRANSPORT_ERROR_CODES.timeout, 0, 'retryable'],
    [TRANSPORT_ERROR_CODES.invalidResponse, 503, 'retryable'],
  ] as const)('%s with HTTP %i is %s', (code, status, category) => {
    expect(classifyOAuthError(code, status)).toBe(category);
  });
});

describe('statusForPortalGone', () => {
  it('moves deleted portals and removed apps to uninstalled, unpaid apps to payment_required', () => {
    expect(statusForPortalGone('PORTAL_DELETED')).toBe('uninstalled');
    expect(statusForPortalGone('APPLICATION_NOT_FOUND')).toBe('uninstalled');
    expect(statusForPortalGone('PAYMENT_REQUIRED')).toBe('payment_required');
  });
});
