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
import { AdminEventReplay } from './admin-event-replay.service';

@AdminController('events', 'events')
export class AdminEventsController {
  constructor(
    private readonly queries: AdminEventsQueries,
    private readonly replays: AdminEventReplay,
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
    description: 'Recorded in the history as an attempt with trigger `replay`.',
  })
  @ApiOkResponse({ type: EventDetailDto })
  @ApiNotFoundResponse({ description: 'Unknown event id', type: ErrorResponseDto })
  @ApiConflictResponse({
    description: 'The handlers of this event are running right now',
    type: ErrorResponseDto,
  })
  replay(@Param() params: EventIdParamsDto): Promise<EventDetailDto> {
    return this.replays.replay(params.id);
  }
}
