import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { readStoredLicense } from '../portals/portal-license';
import { OperatingTimeTracker } from './operating-time.tracker';
import { Bitrix24PortalClient } from './portal-client';
import { PortalRestClient } from './portal-rest.client';
import { RestCallExecutor } from './rest-call.executor';

/** Entry point for every REST call to a portal: vendor handlers and the product's own. */
@Injectable()
export class Bitrix24Client {
  constructor(
    private readonly executor: RestCallExecutor,
    private readonly operatingTime: OperatingTimeTracker,
    private readonly config: AppConfig,
    private readonly dataSource: DataSource,
  ) {}

  /**
   * The client a handler uses for one portal: call, batch, listAll. Cheap to create; all state
   * (the portal's bucket, the token cache) is shared.
   */
  forPortal(memberId: string): Bitrix24PortalClient {
    return new Bitrix24PortalClient(
      memberId,
      this.executor,
      this.operatingTime,
      this.config.bitrix24.authConnector,
      (id) => readStoredLicense(this.dataSource, id),
    );
  }

  /**
   * The product's own operations on a portal (offline-queue drain, event binding, app.info). Not
   * for handlers: taking offline rows outside the drain would lose events.
   */
  operationsFor(memberId: string): PortalRestClient {
    return new PortalRestClient(
      memberId,
      this.executor,
      this.operatingTime,
      this.config.bitrix24.authConnector,
    );
  }
}
