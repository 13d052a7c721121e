import { ArgumentsHost, Catch, ExceptionFilter, Injectable } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { DomainError } from '../errors/domain-error';
import { setRetryAfter, toErrorResponse } from '../errors/error-response.filter';
import { AppLogger } from '../logging/app-logger';
import { INSTALL_PAGE_HEADERS, renderInstallFailedPage } from './install-page';

/**
 * The install URL is shown to a person inside Bitrix24's iframe: a failure answers an HTML page in
 * plain words (with the status the error format would use), not JSON.
 */
@Catch()
@Injectable()
export class InstallFailurePageFilter implements ExceptionFilter {
  private readonly logger: Logger;

  constructor(appLogger: AppLogger) {
    this.logger = appLogger.child('install-page');
  }

  catch(error: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const { status } = toErrorResponse(error, this.logger);
    setRetryAfter(reply, error);
    // Our own errors are written to be read by a person; anything else stays internal (and is logged).
    const explanation =
      error instanceof DomainError
        ? error.message
        : 'Something went wrong on our side while installing. Please try again later.';
    void reply
      .status(status)
      .headers(INSTALL_PAGE_HEADERS)
      .send(renderInstallFailedPage(explanation));
  }
}
