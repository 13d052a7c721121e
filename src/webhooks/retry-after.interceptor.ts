import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { Observable, catchError, throwError } from 'rxjs';
import { InstallationThrottledError } from '../portals/installation.errors';

/**
 * A throttled installation (503 busy, 429 rate limited) tells the client when to come back; the
 * error filters that write the answer keep headers already set on the reply.
 */
@Injectable()
export class RetryAfterInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(
      catchError((error: unknown) => {
        if (error instanceof InstallationThrottledError) {
          void context
            .switchToHttp()
            .getResponse<FastifyReply>()
            .header('retry-after', String(error.retryAfterSeconds));
        }
        return throwError(() => error);
      }),
    );
  }
}
