import { Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import {
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
} from '@nestjs/swagger';
import { AdminController, ErrorResponseDto } from '../admin-api.decorator';
import { AdminPortalActions } from './admin-portal-actions.service';
import {
  DrainReportDto,
  ListPortalsQueryDto,
  MemberIdParamsDto,
  PortalDetailDto,
  PortalPageDto,
  RebindResultDto,
  RefreshTokenResultDto,
} from './admin-portal.dto';
import { AdminPortalsQueries } from './admin-portals.queries';

@AdminController('portals', 'portals')
@ApiNotFoundResponse({ description: 'Unknown member_id', type: ErrorResponseDto })
export class AdminPortalsController {
  constructor(
    private readonly queries: AdminPortalsQueries,
    private readonly actions: AdminPortalActions,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Portals by member_id (keyset pagination)' })
  @ApiOkResponse({ type: PortalPageDto })
  list(@Query() query: ListPortalsQueryDto): Promise<PortalPageDto> {
    return this.queries.list(query);
  }

  @Get(':memberId')
  @ApiOperation({
    summary: 'One portal: status history, token expiry, bindings, queue lag, last drain, inbox',
  })
  @ApiOkResponse({ type: PortalDetailDto })
  detail(@Param() params: MemberIdParamsDto): Promise<PortalDetailDto> {
    return this.queries.detail(params.memberId);
  }

  @Post(':memberId/drain')
  @HttpCode(200)
  @ApiOperation({
    summary: "Drain the portal's offline queue now and report what was stored",
    description:
      'Runs under the same lease as automatic drains: `busy` when another drain of this portal ' +
      'is running, `portal_not_active` unless the portal is active.',
  })
  @ApiOkResponse({ type: DrainReportDto })
  drain(@Param() params: MemberIdParamsDto): Promise<DrainReportDto> {
    return this.actions.drain(params.memberId);
  }

  @Post(':memberId/rebind')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Bind the configured events again (idempotent: binds only what is missing)',
  })
  @ApiOkResponse({ type: RebindResultDto })
  @ApiConflictResponse({ description: 'The portal is not active', type: ErrorResponseDto })
  rebind(@Param() params: MemberIdParamsDto): Promise<RebindResultDto> {
    return this.actions.rebind(params.memberId);
  }

  @Post(':memberId/refresh-token')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Refresh the OAuth chain now (same row lock as automatic refreshes)',
    description: 'Answers the new expiry; the tokens themselves never leave the service.',
  })
  @ApiOkResponse({ type: RefreshTokenResultDto })
  refreshToken(@Param() params: MemberIdParamsDto): Promise<RefreshTokenResultDto> {
    return this.actions.refreshToken(params.memberId);
  }

  @Delete(':memberId')
  @ApiOperation({
    summary: 'Offboard: status `deleted`, tokens wiped, stored events kept, no more traffic',
  })
  @ApiOkResponse({ type: PortalDetailDto })
  offboard(@Param() params: MemberIdParamsDto): Promise<PortalDetailDto> {
    return this.actions.offboard(params.memberId);
  }
}
