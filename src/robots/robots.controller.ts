import { Body, Controller, HttpCode, Param, Post } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { RobotRunOutcome, RobotWebhookService } from './robot-webhook.service';

/** The HANDLER of every robot: Bitrix24 posts each run here (form with bracket keys). */
@ApiExcludeController()
@Controller('bitrix24/robots')
export class RobotsController {
  constructor(private readonly webhooks: RobotWebhookService) {}

  @Post(':code')
  @HttpCode(200)
  async receive(
    @Param('code') code: string,
    @Body() body: unknown,
  ): Promise<{ outcome: RobotRunOutcome }> {
    return { outcome: await this.webhooks.receive(code, body) };
  }
}
