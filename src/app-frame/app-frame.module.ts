import { DynamicModule, Module } from '@nestjs/common';
import { Bitrix24Http } from '../bitrix24/bitrix24-http';
import { PortalsModule } from '../portals/portals.module';
import { WebhooksModule } from '../webhooks/webhooks.module';
import { AppFrameController } from './app-frame.controller';
import { AppSessionGuard } from './app-session.guard';
import { AppSessionService } from './app-session.service';
import { FrameUserVerifier } from './frame-user.verifier';
import { APP_PLACEMENTS, PlacementSync, type PlacementDeclaration } from './placement-sync.service';
import { UserTokenStore } from './user-token.store';

/** The app inside Bitrix24: the frame URL, sessions for the vendor's UI, users' own tokens. */
@Module({
  imports: [PortalsModule, WebhooksModule],
  controllers: [AppFrameController],
  providers: [
    Bitrix24Http,
    FrameUserVerifier,
    AppSessionService,
    AppSessionGuard,
    UserTokenStore,
    PlacementSync,
  ],
  exports: [AppSessionService, AppSessionGuard, UserTokenStore, PlacementSync],
})
export class AppFrameModule {
  /** The vendor's placements, bound at install and rebind with the app frame URL as handler. */
  static withPlacements(placements: PlacementDeclaration[]): DynamicModule {
    return {
      module: AppFrameModule,
      providers: [{ provide: APP_PLACEMENTS, useValue: placements }],
    };
  }
}
