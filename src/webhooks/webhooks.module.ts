import { Module } from '@nestjs/common';
import { EventVerifier } from './event-verifier.service';
import { EventWebhookService } from './event-webhook.service';
import { EventsController } from './events.controller';
import { InstallController } from './install.controller';

/** Bitrix24-facing HTTP: the install URL and the event handler URL. */
@Module({
  controllers: [InstallController, EventsController],
  providers: [EventVerifier, EventWebhookService],
  exports: [EventVerifier],
})
export class WebhooksModule {}
