import { Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { OperatingTimeTracker } from './operating-time.tracker';
import { PortalRestClient } from './portal-rest.client';
import { RestCallExecutor } from './rest-call.executor';

/** Entry point for every REST call the product makes to a portal. */
@Injectable()
export class Bitrix24Client {
  constructor(
    private readonly executor: RestCallExecutor,
    private readonly operatingTime: OperatingTimeTracker,
    private readonly config: AppConfig,
  ) {}

  /** A client bound to one portal; cheap to create, all state (bucket, token cache) is shared. */
  forPortal(memberId: string): PortalRestClient {
    return new PortalRestClient(
      memberId,
      this.executor,
      this.operatingTime,
      this.config.bitrix24.authConnector,
    );
  }
}
