import { Controller, Get, HttpCode, ServiceUnavailableException } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { DataSource } from 'typeorm';

@ApiExcludeController()
@Controller('health')
export class HealthController {
  constructor(private readonly dataSource: DataSource) {}

  @Get('live')
  @HttpCode(200)
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** Ready when the database answers and every migration of this build is applied. */
  @Get('ready')
  async ready(): Promise<{ status: 'ok'; database: 'up'; migrations: 'applied' }> {
    try {
      await this.dataSource.query('SELECT 1');
    } catch {
      throw new ServiceUnavailableException('database unreachable');
    }
    if (await this.dataSource.showMigrations()) {
      throw new ServiceUnavailableException('database has pending migrations');
    }
    return { status: 'ok', database: 'up', migrations: 'applied' };
  }
}
