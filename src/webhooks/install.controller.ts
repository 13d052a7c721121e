import { Body, Controller, Header, HttpCode, Post, Req, UseFilters } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { InstallationService } from '../portals/installation.service';
import { InstallFailurePageFilter } from './install-failure-page.filter';
import { INSTALL_PAGE_HEADERS, renderInstalledPage } from './install-page';
import { parseInstallForm } from './install-request';

/** The install URL of an app with a UI: Bitrix24 opens it in an iframe and posts the installer's form. */
@ApiExcludeController()
@Controller('bitrix24')
@UseFilters(InstallFailurePageFilter)
export class InstallController {
  constructor(private readonly installation: InstallationService) {}

  @Post('install')
  @HttpCode(200)
  @Header('content-type', INSTALL_PAGE_HEADERS['content-type'])
  @Header('cache-control', INSTALL_PAGE_HEADERS['cache-control'])
  @Header('x-content-type-options', INSTALL_PAGE_HEADERS['x-content-type-options'])
  @Header('referrer-policy', INSTALL_PAGE_HEADERS['referrer-policy'])
  async install(@Body() body: unknown, @Req() request: FastifyRequest): Promise<string> {
    const { domain } = await this.installation.installFromUi(parseInstallForm(body), request.ip);
    return renderInstalledPage(domain);
  }
}
