import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { DomainError, ErrorKind } from './domain-error';

const STATUS_BY_KIND: Record<ErrorKind, number> = {
  invalid_input: HttpStatus.BAD_REQUEST,
  unauthenticated: HttpStatus.UNAUTHORIZED,
  forbidden: HttpStatus.FORBIDDEN,
  not_found: HttpStatus.NOT_FOUND,
  conflict: HttpStatus.CONFLICT,
  payload_too_large: HttpStatus.PAYLOAD_TOO_LARGE,
  rate_limited: HttpStatus.TOO_MANY_REQUESTS,
  unavailable: HttpStatus.SERVICE_UNAVAILABLE,
};

/** Fastify's own client errors (body parsing, size limit) carry a code and a 4xx status. */
interface FastifyClientError {
  statusCode: number;
  code?: string;
  message: string;
}

function isFastifyClientError(error: unknown): error is FastifyClientError {
  const statusCode = (error as { statusCode?: unknown })?.statusCode;
  return typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500;
}

function codeFromStatus(status: number): string {
  return (HttpStatus[status] ?? 'error').toLowerCase();
}

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

/** Turns any thrown value into `{"error":{"code","message"}}`; the unexpected are logged once. */
export function toErrorResponse(
  error: unknown,
  logger: Logger,
): { status: number; body: ErrorBody } {
  if (error instanceof DomainError) {
    return {
      status: STATUS_BY_KIND[error.kind],
      body: { error: { code: error.code, message: error.message } },
    };
  }
  if (error instanceof HttpException) {
    const status = error.getStatus();
    const response = error.getResponse();
    const rawMessage =
      typeof response === 'object' && response !== null && 'message' in response
        ? response.message
        : error.message;
    const message = Array.isArray(rawMessage) ? rawMessage.join('; ') : String(rawMessage);
    if (status >= 500) logger.error({ err: error }, 'request failed');
    return { status, body: { error: { code: codeFromStatus(status), message } } };
  }
  if (isFastifyClientError(error)) {
    const code =
      error.statusCode === 413
        ? 'payload_too_large'
        : (error.code ?? codeFromStatus(error.statusCode)).toLowerCase();
    return { status: error.statusCode, body: { error: { code, message: error.message } } };
  }
  logger.error({ err: error }, 'unexpected error');
  return {
    status: HttpStatus.INTERNAL_SERVER_ERROR,
    body: { error: { code: 'internal_error', message: 'Internal server error' } },
  };
}

/** Errors that say when to come back (rate limits, busy) carry it to the client. */
export function setRetryAfter(reply: FastifyReply, error: unknown): void {
  if (error instanceof DomainError && error.retryAfterSeconds !== undefined) {
    void reply.header('retry-after', String(error.retryAfterSeconds));
  }
}

@Catch()
export class ErrorResponseFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(error: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const { status, body } = toErrorResponse(error, this.logger);
    setRetryAfter(reply, error);
    void reply.status(status).header('content-type', 'application/json; charset=utf-8').send(body);
  }
}
