import { Body, Controller, HttpCode, Post, Req } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { parseEventNotification } from './event-notification';
import { EventOutcome, EventWebhookService } from './event-webhook.service';

/** The single handler URL Bitrix24 posts every event to (form with bracket keys, or JSON). */
@ApiExcludeController()
@Controller('bitrix24')
export class EventsController {
  constructor(private readonly webhooks: EventWebhookService) {}

  @Post('events')
  @HttpCode(200)
  async receive(
    @Body() body: unknown,
    @Req() request: FastifyRequest,
  ): Promise<{ outcome: EventOutcome }> {
    const outcome = await this.webhooks.receive(parseEventNotification(body), request.ip);
    return { outcome };
  }
}
