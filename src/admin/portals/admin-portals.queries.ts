import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Brackets, In, Repository } from 'typeorm';
import { EVENT_STATUSES, StoredEventEntity } from '../../inbox/stored-event.entity';
import { DrainBatchEntity } from '../../offline-queue/drain-batch.entity';
import { OfflineQueueStateEntity } from '../../offline-queue/offline-queue-state.entity';
import { PortalStatusChangeEntity } from '../../portals/portal-status-change.entity';
import { PortalTokenEntity } from '../../portals/portal-token.entity';
import { PortalEntity } from '../../portals/portal.entity';
import { licenseOf, licenseStateCondition } from '../../portals/portal-license';
import { PortalNotFoundError } from '../admin.errors';
import { KeysetCursor } from '../pagination/keyset-cursor';
import { Page, toPage } from '../pagination/page-query.dto';
import {
  InboxCountsDto,
  LastDrainDto,
  ListPortalsQueryDto,
  MEMBER_ID_PATTERN,
  PortalDetailDto,
  PortalSummaryDto,
  QueueStateDto,
  StatusChangeDto,
} from './admin-portal.dto';
import { TROUBLE_AFTER_FAILURES } from '../../offline-queue/drain-retry';
import { drainWaitingSince, secondsSince, TokenTimestamps, tokenHealthOf } from './portal-health';

const STATUS_HISTORY_LIMIT = 100;

/** The non-secret part of a portal_tokens row: the token columns are never selected. */
interface TokenExpiryRow extends TokenTimestamps {
  memberId: string;
  refreshedAt: Date | null;
  generation: number;
}

/** LIKE's wildcards and escape character taken literally (backslash is LIKE's default escape). */
const escapeLike = (text: string): string => text.replace(/[\\%_]/g, (match) => `\\${match}`);

const iso = (moment: Date | null): string | null => moment?.toISOString() ?? null;

/** Read side of the admin API for portals: plain queries against the lifecycle and drain tables. */
@Injectable()
export class AdminPortalsQueries {
  constructor(
    @InjectRepository(PortalEntity) private readonly portals: Repository<PortalEntity>,
    @InjectRepository(PortalTokenEntity) private readonly tokens: Repository<PortalTokenEntity>,
    @InjectRepository(PortalStatusChangeEntity)
    private readonly statusChanges: Repository<PortalStatusChangeEntity>,
    @InjectRepository(OfflineQueueStateEntity)
    private readonly queueStates: Repository<OfflineQueueStateEntity>,
    @InjectRepository(DrainBatchEntity) private readonly batches: Repository<DrainBatchEntity>,
    @InjectRepository(StoredEventEntity) private readonly events: Repository<StoredEventEntity>,
  ) {}

  /** Portals ordered by member_id; the keyset makes pages stable while portals are installed. */
  async list(query: ListPortalsQueryDto): Promise<Page<PortalSummaryDto>> {
    const cursor = new KeysetCursor(
      `portals|status=${query.status ?? ''}|license=${query.license ?? ''}` +
        `|deliveryMode=${query.deliveryMode ?? ''}|q=${query.q ?? ''}`,
      MEMBER_ID_PATTERN,
    );
    const after = query.cursor === undefined ? undefined : cursor.decode(query.cursor);
    const builder = this.portals
      .createQueryBuilder('portal')
      .orderBy('portal.memberId', 'ASC')
      .limit(query.limit + 1);
    if (query.status) builder.andWhere('portal.status = :status', { status: query.status });
    if (query.license) builder.andWhere(licenseStateCondition(query.license, 'portal'));
    if (query.deliveryMode) {
      builder.andWhere('portal.deliveryMode = :deliveryMode', { deliveryMode: query.deliveryMode });
    }
    if (query.q) {
      // Prefix matches, each served by its own text_pattern_ops index (BitmapOr of the two).
      const prefix = `${escapeLike(query.q)}%`;
      builder.andWhere(
        new Brackets((search) =>
          search
            .where('lower(portal.domain) LIKE :domainPrefix', {
              domainPrefix: prefix.toLowerCase(),
            })
            .orWhere('portal.memberId LIKE :memberPrefix', { memberPrefix: prefix }),
        ),
      );
    }
    if (after !== undefined) builder.andWhere('portal.memberId > :after', { after });
    const rows = await builder.getMany();

    const memberIds = rows.slice(0, query.limit).map((portal) => portal.memberId);
    const [tokens, states] = await Promise.all([
      this.tokenExpiries(memberIds),
      memberIds.length === 0 ? [] : this.queueStates.findBy({ memberId: In(memberIds) }),
    ]);
    const tokensByMember = new Map(tokens.map((row) => [row.memberId, row]));
    const statesByMember = new Map(states.map((state) => [state.memberId, state]));
    const now = new Date();
    return toPage(
      rows,
      query.limit,
      (portal) => portal.memberId,
      (key) => cursor.encode(key),
      (portal) =>
        this.summaryOf(
          portal,
          tokensByMember.get(portal.memberId),
          statesByMember.get(portal.memberId),
          now,
        ),
    );
  }

  async detail(memberId: string): Promise<PortalDetailDto> {
    const portal = await this.portals.findOneBy({ memberId });
    if (!portal) throw new PortalNotFoundError(memberId);
    const [[tokens], state, history, unclearedBatches, inbox] = await Promise.all([
      this.tokenExpiries([memberId]),
      this.queueStates.findOneBy({ memberId }),
      this.statusChanges.find({
        where: { memberId },
        order: { id: 'DESC' },
        take: STATUS_HISTORY_LIMIT,
      }),
      this.batches.countBy({ memberId, state: 'committed' }),
      this.inboxOf(memberId),
    ]);
    const now = new Date();
    return {
      ...this.summaryOf(portal, tokens, state ?? undefined, now),
      clientEndpoint: portal.clientEndpoint,
      placements: portal.boundPlacements.map(({ code, title }) => ({
        code,
        ...(title === undefined ? {} : { title }),
      })),
      placementsSyncedAt: iso(portal.placementsSyncedAt),
      scope: portal.scope,
      createdAt: portal.createdAt.toISOString(),
      statusHistory: history.map((change): StatusChangeDto => ({
        from: change.fromStatus,
        to: change.toStatus,
        reason: change.reason,
        changedAt: change.changedAt.toISOString(),
      })),
      queue: this.queueOf(state ?? undefined, unclearedBatches, now),
      inbox: {
        ...inbox,
        oldestPendingAt: iso(inbox.oldestPendingAt),
        oldestPendingAgeSeconds: secondsSince(inbox.oldestPendingAt, now),
      },
    };
  }

  /** Throws PortalNotFoundError unless the portal exists (in any status). */
  async assertExists(memberId: string): Promise<void> {
    if (!(await this.portals.existsBy({ memberId }))) throw new PortalNotFoundError(memberId);
  }

  private async tokenExpiries(memberIds: string[]): Promise<TokenExpiryRow[]> {
    if (memberIds.length === 0) return [];
    return this.tokens
      .createQueryBuilder('token')
      .select('token.member_id', 'memberId')
      .addSelect('token.refresh_token IS NOT NULL', 'present')
      .addSelect('token.access_expires_at', 'accessExpiresAt')
      .addSelect('token.refresh_expires_at', 'refreshExpiresAt')
      .addSelect('token.refreshed_at', 'refreshedAt')
      .addSelect('token.generation', 'generation')
      .where('token.member_id IN (:...memberIds)', { memberIds })
      .getRawMany<TokenExpiryRow>();
  }

  private async inboxOf(memberId: string): Promise<
    Omit<InboxCountsDto, 'oldestPendingAt' | 'oldestPendingAgeSeconds'> & {
      oldestPendingAt: Date | null;
    }
  > {
    const [counts, oldest] = await Promise.all([
      this.events
        .createQueryBuilder('event')
        .select('event.status', 'status')
        .addSelect('count(*)::int', 'count')
        .where('event.member_id = :memberId', { memberId })
        .groupBy('event.status')
        .getRawMany<{ status: string; count: number }>(),
      this.events.findOne({
        select: { id: true, receivedAt: true },
        where: { memberId, status: In(['pending', 'failed']) },
        order: { id: 'ASC' },
      }),
    ]);
    const byStatus = Object.fromEntries(EVENT_STATUSES.map((status) => [status, 0])) as Record<
      (typeof EVENT_STATUSES)[number],
      number
    >;
    for (const row of counts) byStatus[row.status as keyof typeof byStatus] = row.count;
    return { ...byStatus, oldestPendingAt: oldest?.receivedAt ?? null };
  }

  private queueOf(
    state: OfflineQueueStateEntity | undefined,
    unclearedBatches: number,
    now: Date,
  ): QueueStateDto {
    const waitingSince = drainWaitingSince(state);
    const leaseExpiresAt = state?.leaseExpiresAt ?? null;
    return {
      drainRequestedAt: iso(state?.drainRequestedAt ?? null),
      waitingSince: iso(waitingSince),
      lagSeconds: secondsSince(waitingSince, now),
      leaseHeld: !!state?.leaseHolder && !!leaseExpiresAt && leaseExpiresAt > now,
      leaseExpiresAt: iso(leaseExpiresAt),
      unclearedBatches,
    };
  }

  private summaryOf(
    portal: PortalEntity,
    tokens: TokenExpiryRow | undefined,
    state: OfflineQueueStateEntity | undefined,
    now: Date,
  ): PortalSummaryDto {
    return {
      memberId: portal.memberId,
      domain: portal.domain,
      status: portal.status,
      statusReason: portal.statusReason,
      statusChangedAt: portal.statusChangedAt.toISOString(),
      planStatus: portal.planStatus,
      deliveryMode: portal.deliveryMode,
      installedAt: iso(portal.installedAt),
      uninstalledAt: iso(portal.uninstalledAt),
      boundEvents: portal.boundEvents.map(({ event, offline }) => ({ event, offline })),
      boundAt: iso(portal.boundAt),
      token: {
        present: tokens?.present ?? false,
        accessExpiresAt: iso(tokens?.accessExpiresAt ?? null),
        refreshExpiresAt: iso(tokens?.refreshExpiresAt ?? null),
        refreshedAt: iso(tokens?.refreshedAt ?? null),
        generation: tokens?.generation ?? 0,
        health: tokenHealthOf(tokens, now),
      },
      lastDrain: state?.lastDrainStartedAt ? this.lastDrainOf(state) : null,
      drainHealth: {
        consecutiveFailures: state?.consecutiveFailures ?? 0,
        lastError: state?.lastError ?? null,
        nextAttemptAt: iso(state?.nextAttemptAt ?? null),
        inTrouble: (state?.consecutiveFailures ?? 0) >= TROUBLE_AFTER_FAILURES,
      },
      lagSeconds: secondsSince(drainWaitingSince(state), now),
      appVersion: portal.appVersion,
      license: (({ checkedAt, state: licenseState, status, paymentExpired, daysLeft, family }) => ({
        state: licenseState,
        status,
        paymentExpired,
        daysLeft,
        family,
        checkedAt: iso(checkedAt),
      }))(licenseOf(portal)),
    };
  }

  private lastDrainOf(state: OfflineQueueStateEntity): LastDrainDto {
    return {
      startedAt: iso(state.lastDrainStartedAt),
      finishedAt: iso(state.lastDrainFinishedAt),
      outcome: state.lastDrainOutcome,
      error: state.lastDrainError,
      events: state.lastDrainEvents,
      totalDrainedEvents: Number(state.totalDrainedEvents),
    };
  }
}
