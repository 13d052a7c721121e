import { Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import { AdminController } from '../admin-api.decorator';
import { StatsDto, StatsQueryDto } from './admin-stats.dto';
import { AdminStatsQueries } from './admin-stats.queries';

@AdminController('stats', 'stats')
export class AdminStatsController {
  constructor(private readonly queries: AdminStatsQueries) {}

  @Get()
  @ApiOperation({
    summary: 'Counts by status and portal, drain throughput, oldest pending and dead events',
  })
  @ApiOkResponse({ type: StatsDto })
  stats(@Query() query: StatsQueryDto): Promise<StatsDto> {
    return this.queries.stats(query);
  }
}
