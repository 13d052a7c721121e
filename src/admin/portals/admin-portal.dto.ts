import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, Matches } from 'class-validator';
import { Transform } from 'class-transformer';
import {
  DELIVERY_MODES,
  PLAN_STATUSES,
  PORTAL_STATUSES,
  type DeliveryMode,
  type PlanStatus,
  type PortalStatus,
} from '../../portals/portal-status';
import { LICENSE_STATES, type LicenseState } from '../../portals/portal-license';
import { PageQueryDto } from '../pagination/page-query.dto';
import { EventStatusCountsDto } from '../stats/admin-stats.dto';

/** Bitrix24 member ids are 32 hex digits; anything outside this alphabet is refused up front. */
export const MEMBER_ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** What a portal search may contain: the alphabet of host names (with a port) and member ids. */
export const PORTAL_SEARCH_PATTERN = /^[A-Za-z0-9_.:-]{1,255}$/;

export class MemberIdParamsDto {
  @ApiProperty({ description: "The portal's member_id", pattern: MEMBER_ID_PATTERN.source })
  @Matches(MEMBER_ID_PATTERN, { message: 'memberId must be 1-64 letters, digits, _ . or -' })
  memberId: string;
}

export class ListPortalsQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ enum: PORTAL_STATUSES, description: 'Only portals in this status' })
  @IsOptional()
  @IsIn(PORTAL_STATUSES, { message: `status must be one of ${PORTAL_STATUSES.join(', ')}` })
  status?: PortalStatus;

  @ApiPropertyOptional({
    enum: LICENSE_STATES,
    description: 'Only portals in this license state (`expired`: the ones to chase)',
  })
  @IsOptional()
  @IsIn(LICENSE_STATES, { message: `license must be one of ${LICENSE_STATES.join(', ')}` })
  license?: LicenseState;

  @ApiPropertyOptional({
    enum: DELIVERY_MODES,
    description: 'Only portals drained this way (`at-most-once`: without rest_offline_extended)',
  })
  @IsOptional()
  @IsIn(DELIVERY_MODES, { message: `deliveryMode must be one of ${DELIVERY_MODES.join(', ')}` })
  deliveryMode?: DeliveryMode;

  @ApiPropertyOptional({
    description:
      'Search: portals whose domain starts with this text (case-insensitive) or whose member_id ' +
      'starts with it. Both are prefix matches served by indexes.',
    pattern: PORTAL_SEARCH_PATTERN.source,
    example: 'acme',
  })
  @IsOptional()
  @Transform(({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value))
  @Matches(PORTAL_SEARCH_PATTERN, {
    message: 'q must be 1-255 letters, digits, _ . : or -',
  })
  q?: string;
}

export class BoundEventDto {
  @ApiProperty({ example: 'ONCRMDEALUPDATE' })
  event: string;

  @ApiProperty({ description: 'Bound with event_type=offline (drained) rather than pushed' })
  offline: boolean;
}

export class BoundPlacementDto {
  @ApiProperty({ example: 'CRM_DEAL_DETAIL_TAB', description: "Bitrix24's placement code" })
  code: string;

  @ApiPropertyOptional({ example: 'My tab', description: 'The title the placement shows' })
  title?: string;
}

export const TOKEN_HEALTHS = [
  'ok',
  'access_expired',
  'refresh_expiring',
  'refresh_expired',
  'missing',
] as const;
export type TokenHealth = (typeof TOKEN_HEALTHS)[number];

/** What is known about the portal's OAuth chain — its timestamps, never the tokens. */
export class TokenExpiryDto {
  @ApiProperty({ description: 'A refresh token is stored (false after uninstall or offboarding)' })
  present: boolean;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  accessExpiresAt: string | null;

  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'Estimated: issue time plus REFRESH_TOKEN_LIFETIME_DAYS',
  })
  refreshExpiresAt: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  refreshedAt: string | null;

  @ApiProperty({ description: 'Bumped on every rotation of the chain' })
  generation: number;

  @ApiProperty({
    enum: TOKEN_HEALTHS,
    description:
      '`access_expired` is routine (the next call refreshes); `refresh_expiring` means the refresh ' +
      'token ends within 3 days; `refresh_expired` or `missing` need a re-installation',
  })
  health: TokenHealth;
}

export class LastDrainDto {
  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  startedAt: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  finishedAt: string | null;

  @ApiProperty({
    type: String,
    nullable: true,
    example: 'drained',
    description:
      'drained, deferred (waiting for the operating-time window), busy, portal_not_active or failed; null while the first one runs',
  })
  outcome: string | null;

  @ApiProperty({ type: String, nullable: true })
  error: string | null;

  @ApiProperty({ description: 'Events stored by the last drain' })
  events: number;

  @ApiProperty({ description: 'Events stored by all drains of this portal' })
  totalDrainedEvents: number;
}

export class DrainHealthDto {
  @ApiProperty({ description: 'Drain passes in a row that failed; 0 after one that drained' })
  consecutiveFailures: number;

  @ApiProperty({ type: String, nullable: true, description: 'Error of the last failed pass' })
  lastError: string | null;

  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'When the retry of the failed pass is due; null when none is pending',
  })
  nextAttemptAt: string | null;

  @ApiProperty({ description: 'Five or more failed passes in a row' })
  inTrouble: boolean;
}

/** The app's license on the portal, as app.info last told it. */
export class LicenseDto {
  @ApiProperty({
    enum: LICENSE_STATES,
    description:
      '`paid` (STATUS P/S), `trial` (T/D), `free` (F), `local` (L), `expired` (PAYMENT_EXPIRED=Y ' +
      'or Bitrix24 answered PAYMENT_REQUIRED), `unknown` (not read yet)',
  })
  state: LicenseState;

  @ApiProperty({
    type: String,
    nullable: true,
    example: 'P',
    description: 'app.info STATUS: F free, D demo, T trial, P paid, L local, S subscription',
  })
  status: string | null;

  @ApiProperty({ type: Boolean, nullable: true, description: 'app.info PAYMENT_EXPIRED' })
  paymentExpired: boolean | null;

  @ApiProperty({
    type: Number,
    nullable: true,
    description:
      'app.info DAYS: days left of the paid or trial period, negative in the grace period',
  })
  daysLeft: number | null;

  @ApiProperty({
    type: String,
    nullable: true,
    example: 'ent',
    description: "app.info LICENSE_FAMILY: the portal's Bitrix24 plan family",
  })
  family: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  checkedAt: string | null;
}

export class PortalSummaryDto {
  @ApiProperty()
  memberId: string;

  @ApiProperty({ description: "Host of the portal's client_endpoint" })
  domain: string;

  @ApiProperty({ enum: PORTAL_STATUSES })
  status: PortalStatus;

  @ApiProperty({ type: String, nullable: true })
  statusReason: string | null;

  @ApiProperty({ type: String, format: 'date-time' })
  statusChangedAt: string;

  @ApiProperty({ enum: PLAN_STATUSES, nullable: true, description: "Bitrix24's license letter" })
  planStatus: PlanStatus | null;

  @ApiProperty({
    enum: DELIVERY_MODES,
    description:
      '`at-most-once` when the portal lacks rest_offline_extended (drained with clear=1)',
  })
  deliveryMode: DeliveryMode;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  installedAt: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  uninstalledAt: string | null;

  @ApiProperty({ type: [BoundEventDto] })
  boundEvents: BoundEventDto[];

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  boundAt: string | null;

  @ApiProperty({ type: TokenExpiryDto })
  token: TokenExpiryDto;

  @ApiProperty({ type: LastDrainDto, nullable: true, description: 'null before the first drain' })
  lastDrain: LastDrainDto | null;

  @ApiProperty({ type: DrainHealthDto })
  drainHealth: DrainHealthDto;

  @ApiProperty({
    description:
      'Queue lag: seconds a requested drain has been waiting to start; 0 when none waits ' +
      '(the same figure as `queue.lagSeconds` of the detail)',
  })
  lagSeconds: number;

  @ApiProperty({
    type: String,
    nullable: true,
    example: '3',
    description: 'Installed app version (app.info VERSION, or a confirmed ONAPPUPDATE)',
  })
  appVersion: string | null;

  @ApiProperty({ type: LicenseDto })
  license: LicenseDto;
}

export class PortalPageDto {
  @ApiProperty({ type: [PortalSummaryDto] })
  items: PortalSummaryDto[];

  @ApiProperty({ type: String, nullable: true, description: 'null on the last page' })
  nextCursor: string | null;
}

export class StatusChangeDto {
  @ApiProperty({ enum: PORTAL_STATUSES, nullable: true })
  from: PortalStatus | null;

  @ApiProperty({ enum: PORTAL_STATUSES })
  to: PortalStatus;

  @ApiProperty()
  reason: string;

  @ApiProperty({ type: String, format: 'date-time' })
  changedAt: string;
}

/**
 * Queue lag is how long a requested drain has been waiting to start: a notification (or the
 * poller, or an operator) asked for a drain at `drainRequestedAt` and no drain has started since.
 * It is 0 when nothing waits. How far behind the vendor handlers are is `inbox.oldestPendingAgeSeconds`.
 */
export class QueueStateDto {
  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  drainRequestedAt: string | null;

  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'Set while a requested drain has not started yet',
  })
  waitingSince: string | null;

  @ApiProperty({ description: 'Seconds the requested drain has been waiting; 0 when none waits' })
  lagSeconds: number;

  @ApiProperty({ description: 'A replica holds the drain lease right now' })
  leaseHeld: boolean;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  leaseExpiresAt: string | null;

  @ApiProperty({
    description: 'Batches committed to Postgres whose clear Bitrix24 has not confirmed yet',
  })
  unclearedBatches: number;
}

export class InboxCountsDto extends EventStatusCountsDto {
  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'When the oldest event still waiting for its handlers (pending or failed) arrived',
  })
  oldestPendingAt: string | null;

  @ApiProperty({ description: 'Age of that event in seconds; 0 when nothing waits' })
  oldestPendingAgeSeconds: number;
}

export class PortalDetailDto extends PortalSummaryDto {
  @ApiProperty({ description: "The portal's REST base URL" })
  clientEndpoint: string;

  @ApiProperty({
    type: [BoundPlacementDto],
    description:
      'Placements the app is bound to (its handler is the app frame URL), as the last placement ' +
      'sync at install, rebind or update left them',
  })
  placements: BoundPlacementDto[];

  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'When the placements were last synced; null before the first sync',
  })
  placementsSyncedAt: string | null;

  @ApiProperty({ type: String, nullable: true })
  scope: string | null;

  @ApiProperty({ type: String, format: 'date-time' })
  createdAt: string;

  @ApiProperty({ type: [StatusChangeDto], description: 'Newest first, at most 100' })
  statusHistory: StatusChangeDto[];

  @ApiProperty({ type: QueueStateDto })
  queue: QueueStateDto;

  @ApiProperty({ type: InboxCountsDto })
  inbox: InboxCountsDto;
}

export const DRAIN_OUTCOMES = [
  'drained',
  'deferred',
  'busy',
  'portal_not_active',
  'failed',
] as const;

export class DrainReportDto {
  @ApiProperty()
  memberId: string;

  @ApiProperty({
    enum: DRAIN_OUTCOMES,
    description:
      "`busy`: another replica holds the lease and is draining this portal right now. `deferred`: the portal's operating-time budget for event.offline.get is spent; what was taken is stored and cleared, and the drain goes on after the window resets (`retryInMs`)",
  })
  outcome: (typeof DRAIN_OUTCOMES)[number];

  @ApiProperty({ description: 'Events stored by this drain' })
  events: number;

  @ApiProperty({ description: 'Pages fetched with event.offline.get' })
  pages: number;

  @ApiProperty({
    description:
      'Rows in the largest of those pages: on a backlog pages grow from DRAIN_PAGE_SIZE up to DRAIN_MAX_PAGE_SIZE',
  })
  largestPage: number;

  @ApiProperty({ description: 'Batches of an earlier, interrupted drain that were finished first' })
  recoveredBatches: number;

  @ApiProperty({ enum: DELIVERY_MODES })
  deliveryMode: DeliveryMode;

  @ApiProperty()
  durationMs: number;

  @ApiPropertyOptional()
  error?: string;

  @ApiPropertyOptional({
    description:
      'After a failed pass, the wait before its retry; after a deferred one, the wait until the operating-time window resets',
  })
  retryInMs?: number;
}

export class RebindResultDto {
  @ApiProperty()
  memberId: string;

  @ApiProperty({ type: [String], description: 'Bindings created now' })
  bound: string[];

  @ApiProperty({ type: [String], description: 'Bindings that were already in place' })
  alreadyBound: string[];

  @ApiProperty({ enum: DELIVERY_MODES })
  deliveryMode: DeliveryMode;
}

export class RefreshTokenResultDto {
  @ApiProperty()
  memberId: string;

  @ApiProperty({ description: 'Generation of the chain after the refresh' })
  generation: number;

  @ApiProperty({ type: String, format: 'date-time' })
  accessExpiresAt: string;
}
