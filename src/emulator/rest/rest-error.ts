/**
 * A Bitrix24 REST error: the `error` code clients branch on, its text, and the HTTP status the real
 * portal answers with (contract §7). Extra keys (such as `argument`) go into the envelope as they are.
 */
export class RestError extends Error {
  constructor(
    readonly code: string,
    readonly description: string,
    readonly httpStatus: number,
    readonly extra: Readonly<Record<string, string>> = {},
  ) {
    super(`${code}: ${description}`);
    this.name = 'RestError';
  }

  toEnvelope(): Record<string, string> {
    return { error: this.code, error_description: this.description, ...this.extra };
  }
}

/** The errors the emulated portal answers, with the texts and statuses of the contract. */
export const restErrors = {
  noAuthFound: () => new RestError('NO_AUTH_FOUND', 'Wrong authorization data', 401),
  invalidToken: () => new RestError('invalid_token', 'The access token provided is invalid', 401),
  expiredToken: () => new RestError('expired_token', 'The access token provided has expired', 401),
  applicationNotFound: () => new RestError('APPLICATION_NOT_FOUND', 'Application not found', 401),
  insufficientScope: (httpStatus: 401 | 403) =>
    new RestError(
      'insufficient_scope',
      'The request requires higher privileges than provided by the access token',
      httpStatus,
    ),
  accessDenied: (reason?: string) =>
    new RestError('ACCESS_DENIED', reason ? `Access denied! ${reason}` : 'Access denied!', 403),
  wrongAuthType: () =>
    new RestError('WRONG_AUTH_TYPE', 'Current authorization type is denied for this method', 403),
  wrongLicense: (feature: string) =>
    new RestError(
      'WRONG_LICENSE',
      `This feature is not enabled for the current license: ${feature}`,
      403,
    ),
  queryLimitExceeded: () => new RestError('QUERY_LIMIT_EXCEEDED', 'Too many requests', 503),
  overload: () => new RestError('OVERLOAD_LIMIT', 'REST API is blocked due to overload', 503),
  operationTimeLimit: () =>
    new RestError('OPERATION_TIME_LIMIT', 'Method is blocked due to operation time limit', 429),
  methodNotFound: () => new RestError('ERROR_METHOD_NOT_FOUND', 'Method not found!', 404),
  portalDeleted: () => new RestError('PORTAL_DELETED', 'Portal was deleted', 403),
  internalServerError: () => new RestError('INTERNAL_SERVER_ERROR', 'Internal server error', 500),
  argument: (description: string, argument?: string) =>
    new RestError('ERROR_ARGUMENT', description, 400, argument ? { argument } : {}),
  argumentNull: (argument: string) =>
    restErrors.argument(`Argument '${argument}' is null or empty`, argument),
  core: (description: string) => new RestError('ERROR_CORE', description, 400),
  eventNotFound: () => new RestError('ERROR_EVENT_NOT_FOUND', 'Event not found', 400),
  wrongHandlerUrl: () => new RestError('ERROR_WRONG_HANDLER_URL', 'Wrong handler URL', 400),
  unsupportedProtocol: () =>
    new RestError('ERROR_UNSUPPORTED_PROTOCOL', 'Unsupported handler protocol', 400),
  codeEmpty: () => new RestError('CODE_EMPTY', "CODE can't be empty", 400),
  batchLengthExceeded: () =>
    new RestError('ERROR_BATCH_LENGTH_EXCEEDED', 'Max batch length exceeded', 400),
  batchMethodNotAllowed: () =>
    new RestError('ERROR_BATCH_METHOD_NOT_ALLOWED', 'Method is not allowed for batch usage', 405),
  /** CRM methods answer an empty code with the description (crm-deal-get.md, "Error Handling"). */
  notFound: () => new RestError('', 'Not found', 400),
};
