import { Module } from '@nestjs/common';
import { EventVerifier } from './event-verifier.service';
import { EventWebhookService } from './event-webhook.service';
import { EventsRoute } from './events.route';
import { InstallController } from './install.controller';

/**
 * Bitrix24-facing HTTP: the install URL (a controller) and the event handler URL (EventsRoute, a
 * route on the Fastify instance; see there why).
 */
@Module({
  controllers: [InstallController],
  providers: [EventVerifier, EventWebhookService, EventsRoute],
  exports: [EventVerifier],
})
export class WebhooksModule {}
