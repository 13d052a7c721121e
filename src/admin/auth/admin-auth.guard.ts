import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AdminUnauthenticatedError } from '../admin.errors';
import { AdminAuthenticator } from './admin-authenticator';

/** Puts every admin route behind AdminAuthenticator and adds the headers its refusals call for. */
@Injectable()
export class AdminAuthGuard implements CanActivate {
  constructor(private readonly authenticator: AdminAuthenticator) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const reply = context.switchToHttp().getResponse<FastifyReply>();
    try {
      await this.authenticator.authenticate({
        ip: request.ip,
        authorization: request.headers.authorization,
        route: request.routeOptions.url,
      });
      return true;
    } catch (error) {
      // Retry-After of TooManyFailedAttemptsError is set by the error filter.
      if (error instanceof AdminUnauthenticatedError) {
        void reply.header('www-authenticate', 'Bearer realm="admin"');
      }
      throw error;
    }
  }
}
