import { Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import {
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
} from '@nestjs/swagger';
import { AdminController, ErrorResponseDto } from '../admin-api.decorator';
import {
  EventDetailDto,
  EventIdParamsDto,
  EventPageDto,
  ListEventsQueryDto,
} from './admin-event.dto';
import { AdminEventsQueries } from './admin-events.queries';
import { AdminEventDiscard } from './admin-event-discard.service';
import { AdminEventReplay } from './admin-event-replay.service';

@AdminController('events', 'events')
export class AdminEventsController {
  constructor(
    private readonly queries: AdminEventsQueries,
    private readonly replays: AdminEventReplay,
    private readonly discards: AdminEventDiscard,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Stored events, filtered, newest first (keyset pagination)' })
  @ApiOkResponse({ type: EventPageDto })
  list(@Query() query: ListEventsQueryDto): Promise<EventPageDto> {
    return this.queries.list(query);
  }

  @Get(':id')
  @ApiOperation({ summary: 'One stored event with its processing history' })
  @ApiOkResponse({ type: EventDetailDto })
  @ApiNotFoundResponse({ description: 'Unknown event id', type: ErrorResponseDto })
  detail(@Param() params: EventIdParamsDto): Promise<EventDetailDto> {
    return this.queries.detail(params.id);
  }

  @Post(':id/replay')
  @HttpCode(200)
  @ApiOperation({
    summary: "Run the event's handlers again now, whatever its status",
    description:
      'Recorded in the history as an attempt with trigger `replay`. A dead event holds its ' +
      "object's later events: replaying it runs it, and when it succeeds the object's line moves " +
      'on; when it fails it stays dead. An unhandled event (no handler where it ran) is run by a ' +
      'replay on a process that has its handler.',
  })
  @ApiOkResponse({ type: EventDetailDto })
  @ApiNotFoundResponse({ description: 'Unknown event id', type: ErrorResponseDto })
  @ApiConflictResponse({
    description:
      'The handlers of this event are running right now (`event_in_progress`), or an earlier ' +
      'event of its object is unfinished or dead, or another of its events runs ' +
      '(`event_waiting_in_line`)',
    type: ErrorResponseDto,
  })
  replay(@Param() params: EventIdParamsDto): Promise<EventDetailDto> {
    return this.replays.replay(params.id);
  }

  @Post(':id/discard')
  @HttpCode(200)
  @ApiOperation({
    summary: "Give up on a dead or unhandled event: its object's later events go on",
    description:
      'The event stays stored with status `discarded`, and its history gets an entry with ' +
      "trigger `discard`. Ordering is the inbox's promise: a dead event holds its object's later " +
      'events (pending, not attempted) until it is replayed successfully or discarded.',
  })
  @ApiOkResponse({ type: EventDetailDto })
  @ApiNotFoundResponse({ description: 'Unknown event id', type: ErrorResponseDto })
  @ApiConflictResponse({
    description:
      'The event is neither dead nor unhandled (`event_not_discardable`), or a replay of it is ' +
      'running right now (`event_in_progress`)',
    type: ErrorResponseDto,
  })
  discard(@Param() params: EventIdParamsDto): Promise<EventDetailDto> {
    return this.discards.discard(params.id);
  }
}
