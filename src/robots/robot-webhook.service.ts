import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { InboxService } from '../inbox/inbox.service';
import { AppLogger } from '../logging/app-logger';
import { EventVerifier } from '../webhooks/event-verifier.service';
import { EventNotVerifiedError, MalformedEventError } from '../webhooks/webhook.errors';
import { parseRobotForm, robotEventName } from './robot-form';
import { RobotRegistry } from './robot-registry.service';
import { UnknownRobotError } from './robots.errors';

export type RobotRunOutcome = 'stored' | 'duplicate';

const MEMBER_ID = /^[A-Za-z0-9_.-]{1,64}$/;
const TOKEN = /^[\x21-\x7e]{1,512}$/;
const UNIX_SECONDS = /^\d{1,12}$/;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A robot's POST: verified by its application_token against an active portal (constant time, as
 * events are), then stored once per event_token in the inbox. Nothing runs inside the request.
 */
@Injectable()
export class RobotWebhookService {
  private readonly log: Logger;

  constructor(
    private readonly verifier: EventVerifier,
    private readonly inbox: InboxService,
    private readonly registry: RobotRegistry,
    appLogger: AppLogger,
  ) {
    this.log = appLogger.child('robots');
  }

  async receive(code: string, body: unknown): Promise<RobotRunOutcome> {
    if (!isRecord(body)) throw new MalformedEventError('The body must be a form or JSON object');
    const auth = body.auth;
    if (!isRecord(auth)) throw new EventNotVerifiedError();
    const memberId = auth.member_id;
    const applicationToken = auth.application_token;
    if (typeof memberId !== 'string' || !MEMBER_ID.test(memberId))
      throw new EventNotVerifiedError();
    if (typeof applicationToken !== 'string' || !TOKEN.test(applicationToken)) {
      throw new EventNotVerifiedError();
    }
    const verification = await this.verifier.verify(memberId, applicationToken);
    if (!verification.verified || verification.status !== 'active') {
      this.log.debug({ memberId, code }, 'robot run rejected');
      throw new EventNotVerifiedError();
    }
    if (!this.registry.has(code)) throw new UnknownRobotError(code);
    const form = parseRobotForm(body, code);
    const ts = body.ts;
    const firedAt =
      typeof ts === 'string' && UNIX_SECONDS.test(ts) ? new Date(Number(ts) * 1000) : null;
    const { stored } = await this.inbox.storeOnlineEvent({
      memberId,
      eventName: robotEventName(code),
      data: form,
      bitrixTimestamp: firedAt,
      // event_token is long; its digest fits the key and still names the run exactly.
      dedupKey: createHash('sha256').update(`robot:${form.event_token}`).digest('hex'),
    });
    return stored ? 'stored' : 'duplicate';
  }
}
