import { applyDecorators, Controller, UseGuards } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiProperty,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiTooManyRequestsResponse,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { AdminAuthGuard } from './auth/admin-auth.guard';

/** Name of the OpenAPI security scheme every admin operation requires. */
export const ADMIN_SECURITY_SCHEME = 'admin-token';

export class ErrorDetailDto {
  @ApiProperty({ example: 'invalid_bearer_token' })
  code: string;

  @ApiProperty()
  message: string;
}

export class ErrorResponseDto {
  @ApiProperty({ type: ErrorDetailDto })
  error: ErrorDetailDto;
}

/**
 * An admin controller: mounted under `admin/<path>`, behind the bearer guard, documented with
 * the answers every admin route can give besides its own.
 */
export function AdminController(path: string, tag: string): ClassDecorator {
  return applyDecorators(
    Controller(`admin/${path}`),
    UseGuards(AdminAuthGuard),
    ApiTags(tag),
    ApiBearerAuth(ADMIN_SECURITY_SCHEME),
    ApiBadRequestResponse({ description: 'Invalid parameter', type: ErrorResponseDto }),
    ApiUnauthorizedResponse({
      description: 'Missing or wrong bearer token',
      type: ErrorResponseDto,
    }),
    ApiTooManyRequestsResponse({
      description: 'Too many wrong tokens from this address; see Retry-After',
      type: ErrorResponseDto,
    }),
    ApiServiceUnavailableResponse({
      description: 'ADMIN_TOKEN is not configured',
      type: ErrorResponseDto,
    }),
  );
}
