import { Module } from '@nestjs/common';
import { Bitrix24Http } from '../bitrix24/bitrix24-http';
import { PortalsModule } from '../portals/portals.module';
import { WebhooksModule } from '../webhooks/webhooks.module';
import { AppFrameController } from './app-frame.controller';
import { AppSessionGuard } from './app-session.guard';
import { AppSessionService } from './app-session.service';
import { FrameUserVerifier } from './frame-user.verifier';
import { UserTokenStore } from './user-token.store';

/** The app inside Bitrix24: the frame URL, sessions for the vendor's UI, users' own tokens. */
@Module({
  imports: [PortalsModule, WebhooksModule],
  controllers: [AppFrameController],
  providers: [Bitrix24Http, FrameUserVerifier, AppSessionService, AppSessionGuard, UserTokenStore],
  exports: [AppSessionService, AppSessionGuard, UserTokenStore],
})
export class AppFrameModule {}
