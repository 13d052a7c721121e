import { Injectable, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { setRetryAfter, toErrorResponse } from '../errors/error-response.filter';
import { AppLogger } from '../logging/app-logger';
import { parseEventNotification } from './event-notification';
import { EventOutcome, EventWebhookService } from './event-webhook.service';

/** The single handler URL Bitrix24 posts every event to (form with bracket keys, or JSON). */
export const EVENTS_PATH = '/bitrix24/events';

/**
 * POST /bitrix24/events, registered on the Fastify instance itself instead of as a Nest
 * controller: it is the route Bitrix24 floods (every portal's every change), and Nest's
 * per-request pipeline (route proxy, execution context, pipes, interceptors, the response
 * controller) took about 5% of the app thread at saturation while doing nothing for it (no guard,
 * no interceptor, the global ValidationPipe leaves an untyped body as it is; see RESULTS.md). The handler calls the same
 * EventWebhookService, taken from Nest's container.
 *
 * What it costs in clarity: the route is not among the controllers, and whatever is added with
 * Nest's enhancers (app.useGlobalGuards/Interceptors/Pipes, APP_* providers, filters) does not
 * reach it. Errors thrown here are mapped by the same toErrorResponse the global ErrorResponseFilter
 * uses, so the answer is the same `{"error":{"code","message"}}` (and Retry-After) as elsewhere;
 * errors Fastify raises before the handler (unparsable or oversized bodies, an unsupported type)
 * still go through the filter, as for every route. Fastify hooks (the Nest adapter's, HTTP
 * metrics, reading a refused upload to its end) apply to it as to every route.
 */
@Injectable()
export class EventsRoute implements OnModuleInit {
  private readonly logger: Logger;

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly webhooks: EventWebhookService,
    appLogger: AppLogger,
  ) {
    this.logger = appLogger.child('http');
  }

  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    fastify.post(EVENTS_PATH, (request, reply) => this.handle(request, reply));
  }

  private async handle(
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<{ outcome: EventOutcome } | FastifyReply> {
    try {
      const outcome = await this.webhooks.receive(parseEventNotification(request.body), request.ip);
      return { outcome };
    } catch (error) {
      const { status, body } = toErrorResponse(error, this.logger);
      setRetryAfter(reply, error);
      return reply
        .status(status)
        .header('content-type', 'application/json; charset=utf-8')
        .send(body);
    }
  }
}
