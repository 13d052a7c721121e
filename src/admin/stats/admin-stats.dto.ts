import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsInt, IsOptional, Max, Min } from 'class-validator';
import { toInteger } from '../pagination/page-query.dto';

export class StatsQueryDto {
  @ApiPropertyOptional({
    type: 'integer',
    description: 'How many portals to list by backlog',
    minimum: 1,
    maximum: 100,
    default: 10,
  })
  @IsOptional()
  @Transform(toInteger)
  @IsInt()
  @Min(1)
  @Max(100)
  top: number = 10;

  @ApiPropertyOptional({
    type: 'integer',
    description: 'Drain throughput window, in whole minutes up to now',
    minimum: 1,
    maximum: 60,
    default: 15,
  })
  @IsOptional()
  @Transform(toInteger)
  @IsInt()
  @Min(1)
  @Max(60)
  minutes: number = 15;
}

export class EventStatusCountsDto {
  @ApiProperty()
  pending: number;

  @ApiProperty()
  processed: number;

  @ApiProperty()
  failed: number;

  @ApiProperty()
  dead: number;

  @ApiProperty({ description: 'No handler was registered where they ran; replay them once one is' })
  unhandled: number;

  @ApiProperty({ description: 'Dead or unhandled events the operator discarded' })
  discarded: number;
}

export class OldestPendingEventDto {
  @ApiProperty()
  id: string;

  @ApiProperty()
  memberId: string;

  @ApiProperty()
  eventName: string;

  @ApiProperty({ type: String, format: 'date-time' })
  receivedAt: string;

  @ApiProperty()
  ageSeconds: number;
}

export class EventStatsDto {
  @ApiProperty()
  total: number;

  @ApiProperty({ type: EventStatusCountsDto })
  byStatus: EventStatusCountsDto;

  @ApiProperty({ description: 'Events whose handlers gave up (dead letters)' })
  dead: number;

  @ApiProperty({
    description:
      "Objects (portal and ordering key) whose line a dead event holds: the object's later " +
      'events wait until it is replayed successfully or discarded',
  })
  blockedObjects: number;

  @ApiProperty({
    type: OldestPendingEventDto,
    nullable: true,
    description: 'The oldest event still waiting for its handlers (pending or failed)',
  })
  oldestPending: OldestPendingEventDto | null;
}

export class PortalStatusCountsDto {
  @ApiProperty()
  new: number;

  @ApiProperty()
  active: number;

  @ApiProperty()
  needs_reinstall: number;

  @ApiProperty()
  payment_required: number;

  @ApiProperty()
  uninstalled: number;

  @ApiProperty()
  deleted: number;
}

export class PortalStatsDto {
  @ApiProperty()
  total: number;

  @ApiProperty({ type: PortalStatusCountsDto })
  byStatus: PortalStatusCountsDto;
}

export class PortalBacklogDto {
  @ApiProperty()
  memberId: string;

  @ApiProperty()
  pending: number;

  @ApiProperty({ description: 'Failed once, waiting for a retry' })
  failed: number;

  @ApiProperty()
  dead: number;
}

export class ThroughputMinuteDto {
  @ApiProperty({ type: String, format: 'date-time', description: 'Start of the minute' })
  minute: string;

  @ApiProperty({ description: 'Offline events stored during that minute' })
  events: number;
}

export class DrainThroughputDto {
  @ApiProperty({ description: 'Window length; the last minute is the current, partial one' })
  minutes: number;

  @ApiProperty({ description: 'Offline events stored in the window' })
  events: number;

  @ApiProperty({ description: 'events divided by the seconds the window has lasted so far' })
  eventsPerSecond: number;

  @ApiProperty({ type: [ThroughputMinuteDto], description: 'Oldest minute first' })
  perMinute: ThroughputMinuteDto[];
}

export class DrainStateStatsDto {
  @ApiProperty({ description: 'Portals whose requested drain has not started yet' })
  waiting: number;

  @ApiProperty({ description: 'Portals whose drain lease is held right now' })
  running: number;

  @ApiProperty({ description: 'Portals whose last drain ended with outcome `failed`' })
  lastFailed: number;

  @ApiProperty({ description: 'Committed batches whose clear Bitrix24 has not confirmed yet' })
  unclearedBatches: number;
}

export class StatsDto {
  @ApiProperty({ type: String, format: 'date-time' })
  generatedAt: string;

  @ApiProperty({ type: EventStatsDto })
  events: EventStatsDto;

  @ApiProperty({ type: PortalStatsDto })
  portals: PortalStatsDto;

  @ApiProperty({
    type: [PortalBacklogDto],
    description: 'The `top` portals with the most pending events, then the most failed',
  })
  topPortalsByPending: PortalBacklogDto[];

  @ApiProperty({ type: DrainThroughputDto })
  drainThroughput: DrainThroughputDto;

  @ApiProperty({ type: DrainStateStatsDto })
  drains: DrainStateStatsDto;
}
