import {
  Body,
  Controller,
  Get,
  HttpCode,
  NotFoundException,
  Param,
  Post,
  Res,
} from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { AppConfig } from '../config/app-config';
import { AppLogger } from '../logging/app-logger';
import type { AppSession } from './app-session';
import { AppSessionService } from './app-session.service';
import { CurrentAppSession, RequiresAppSession } from './app-session.guard';
import { APP_PAGE_HEADERS, readUiFile, renderAppPage, renderRefusedPage } from './app-page';
import { FrameRequestInvalidError, parseFrameForm } from './frame-request';
import { FrameUserVerifier } from './frame-user.verifier';
import { UserTokenStore } from './user-token.store';

/** The app's main URL and every placement's handler URL: Bitrix24 posts here inside its iframe. */
@ApiExcludeController()
@Controller()
export class AppFrameController {
  private readonly log: Logger;

  constructor(
    private readonly config: AppConfig,
    private readonly verifier: FrameUserVerifier,
    private readonly sessions: AppSessionService,
    private readonly userTokens: UserTokenStore,
    appLogger: AppLogger,
  ) {
    this.log = appLogger.child('app-frame');
  }

  @Post('bitrix24/app')
  async open(@Body() body: unknown, @Res() reply: FastifyReply): Promise<void> {
    let frame;
    try {
      frame = parseFrameForm(body);
    } catch (error) {
      if (!(error instanceof FrameRequestInvalidError)) throw error;
      this.log.info({ reason: error.message }, 'app frame refused');
      return this.refuse(reply);
    }
    const verification = await this.verifier.verify(frame);
    if (!verification.verified) {
      this.log.info({ memberId: frame.memberId, reason: verification.reason }, 'app frame refused');
      return this.refuse(reply);
    }
    const { user } = verification;
    await this.userTokens.store(frame, user.userId, user.isAdmin);
    const session = this.sessions.sign(
      {
        memberId: frame.memberId,
        userId: user.userId,
        isAdmin: user.isAdmin,
        userName: user.name,
        placement: frame.placement,
        placementOptions: frame.placementOptions,
      },
      frame.authExpiresSeconds || 3600,
    );
    const html = await renderAppPage(this.config.appFrame.uiDir, session.token);
    void reply.status(200).headers(APP_PAGE_HEADERS).send(html);
  }

  @Get('app-ui/:file')
  async uiFile(@Param('file') file: string, @Res() reply: FastifyReply): Promise<void> {
    const found = await readUiFile(this.config.appFrame.uiDir, file);
    if (found === null) throw new NotFoundException(`No UI file ${file}`);
    void reply
      .status(200)
      .headers({ 'content-type': found.contentType, 'x-content-type-options': 'nosniff' })
      .send(found.body);
  }

  @Get('app-api/me')
  @HttpCode(200)
  @RequiresAppSession()
  me(@CurrentAppSession() session: AppSession): Omit<AppSession, 'expiresAt'> {
    return {
      memberId: session.memberId,
      userId: session.userId,
      isAdmin: session.isAdmin,
      userName: session.userName,
      placement: session.placement,
      placementOptions: session.placementOptions,
    };
  }

  private refuse(reply: FastifyReply): void {
    void reply.status(401).headers(APP_PAGE_HEADERS).send(renderRefusedPage());
  }
}
