import type {
  AppFrameForm,
  ChangeLicenseRequest,
  ChangeLicenseResult,
  PublishVersionResult,
  AuthorizationCodeRequest,
  OpenAppFrameRequest,
  AuthorizationCodeResult,
  ClockState,
  ControlErrorBody,
  CreatePortalRequest,
  CreatedPortal,
  EnqueueOfflineEventsRequest,
  EnqueueOfflineEventsResult,
  EventInstallResult,
  ExpireTokensRequest,
  ExpireTokensResult,
  InstallFinishResult,
  IssuedTokensList,
  OperatingTimeSettings,
  OperatingTimeState,
  PortalFaults,
  PortalStats,
  PurgeReservedRequest,
  PurgeReservedResult,
  RestRequestRecord,
  SeedDealsRequest,
  SeedDealsResult,
  SentEvent,
  UiInstallResult,
  UninstallRequest,
  UninstallResult,
  UserActionRequest,
  UserActionResult,
  MoveDomainRequest,
  MovedDomain,
  RegisteredRobotView,
  RobotAnswer,
  RobotRunResult,
  RunRobotRequest,
} from './control-contract';

/** The control API refused a request; `code` is its `error` field. */
export class EmulatorControlError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'EmulatorControlError';
  }
}

/** Typed client of the emulator's control API, one method per route. */
export class EmulatorControlClient {
  constructor(private readonly url: string) {}

  createPortal(request: CreatePortalRequest = {}): Promise<CreatedPortal> {
    return this.send('POST', '/portals', request);
  }

  install(
    memberId: string,
    request: { mode: 'event'; handlerUrl: string },
  ): Promise<EventInstallResult>;
  install(memberId: string, request: { mode: 'ui' }): Promise<UiInstallResult>;
  install(
    memberId: string,
    request: { mode: 'event'; handlerUrl: string } | { mode: 'ui' },
  ): Promise<EventInstallResult | UiInstallResult> {
    return this.send('POST', `${portalPath(memberId)}/install`, request);
  }

  /** What BX24.installFinish() does: INSTALLED=Y. */
  finishInstall(memberId: string): Promise<InstallFinishResult> {
    return this.send('POST', `${portalPath(memberId)}/install-finish`, {});
  }

  enqueueOfflineEvents(
    memberId: string,
    request: EnqueueOfflineEventsRequest,
  ): Promise<EnqueueOfflineEventsResult> {
    return this.send('POST', `${portalPath(memberId)}/offline-events`, request);
  }

  uninstall(memberId: string, request: UninstallRequest = {}): Promise<UninstallResult> {
    return this.send('POST', `${portalPath(memberId)}/uninstall`, request);
  }

  /** The portal installs the app's next version: new application_token, ONAPPUPDATE sent. */
  publishVersion(memberId: string): Promise<PublishVersionResult> {
    return this.send('POST', `${portalPath(memberId)}/app-versions`, {});
  }

  /** Changes what app.info says of the license and (unless `notify: false`) sends ONAPPPAYMENT. */
  changeLicense(memberId: string, request: ChangeLicenseRequest): Promise<ChangeLicenseResult> {
    return this.send('POST', `${portalPath(memberId)}/license`, request);
  }

  expireTokens(memberId: string, request: ExpireTokensRequest = {}): Promise<ExpireTokensResult> {
    return this.send('POST', `${portalPath(memberId)}/expire-tokens`, request);
  }

  /** Replaces the portal's faults. */
  setFaults(memberId: string, faults: PortalFaults): Promise<PortalFaults> {
    return this.send('PUT', `${portalPath(memberId)}/faults`, faults);
  }

  /**
   * Sets the portal's operating-time limit (default 480 s per method and 10 minutes), the modelled
   * cost of methods (a base plus a share per returned row; the call then takes that long) and how
   * batches are billed. Fields left out keep their value.
   */
  setOperatingTime(memberId: string, settings: OperatingTimeSettings): Promise<OperatingTimeState> {
    return this.send('PUT', `${portalPath(memberId)}/operating-time`, settings);
  }

  clearFaults(memberId: string): Promise<PortalFaults> {
    return this.send('DELETE', `${portalPath(memberId)}/faults`);
  }

  stats(memberId: string): Promise<PortalStats> {
    return this.send('GET', `${portalPath(memberId)}/stats`);
  }

  /** The recent event POSTs to the app, oldest first. */
  sent(memberId: string): Promise<SentEvent[]> {
    return this.send('GET', `${portalPath(memberId)}/sent`);
  }

  /** The REST requests the portal received (method, auth_connector, time, outcome), oldest first. */
  requests(memberId: string): Promise<RestRequestRecord[]> {
    return this.send('GET', `${portalPath(memberId)}/requests`);
  }

  /** Stores deals directly (no events, no rate limit), for list and fetch scenarios. */
  seedDeals(memberId: string, request: SeedDealsRequest): Promise<SeedDealsResult> {
    return this.send('POST', `${portalPath(memberId)}/crm/deals`, request);
  }

  purgeReserved(
    memberId: string,
    request: PurgeReservedRequest = {},
  ): Promise<PurgeReservedResult> {
    return this.send('POST', `${portalPath(memberId)}/purge-reserved`, request);
  }

  createAuthorizationCode(
    memberId: string,
    request: AuthorizationCodeRequest = {},
  ): Promise<AuthorizationCodeResult> {
    return this.send('POST', `${portalPath(memberId)}/authorization-codes`, request);
  }

  /** A user opens the app (or a placement): the form to POST to the app's URL. */
  openAppFrame(memberId: string, request: OpenAppFrameRequest = {}): Promise<AppFrameForm> {
    return this.send('POST', `${portalPath(memberId)}/app-frames`, request);
  }

  /** Runs a REST method as a user in the portal UI (no app context), e.g. crm.deal.update. */
  userAction(memberId: string, request: UserActionRequest): Promise<UserActionResult> {
    return this.send('POST', `${portalPath(memberId)}/user-actions`, request);
  }

  /** Every access, refresh and application token issued (optionally for one portal). */
  tokens(memberId?: string): Promise<IssuedTokensList> {
    const query = memberId === undefined ? '' : `?memberId=${encodeURIComponent(memberId)}`;
    return this.send('GET', `/tokens${query}`);
  }

  /** Moves the emulator's clock forward: tokens age, buckets drain, minTimeout windows pass. */
  advanceClock(seconds: number): Promise<ClockState> {
    return this.send('POST', '/clock/advance', { seconds });
  }

  /** The portal changes its domain; with `loop`, the old and new addresses redirect to each other. */
  moveDomain(memberId: string, request: MoveDomainRequest): Promise<MovedDomain> {
    return this.send('POST', `${portalPath(memberId)}/domain`, request);
  }

  /** A document reaches the robot's stage: the portal POSTs the run to the robot's HANDLER. */
  runRobot(memberId: string, code: string, request: RunRobotRequest = {}): Promise<RobotRunResult> {
    return this.send(
      'POST',
      `${portalPath(memberId)}/robots/${encodeURIComponent(code)}/run`,
      request,
    );
  }

  /** The bizproc.event.send answers the portal accepted, oldest first. */
  robotAnswers(memberId: string): Promise<RobotAnswer[]> {
    return this.send('GET', `${portalPath(memberId)}/robot-answers`);
  }

  /** The robots the app registered on the portal, with their fields. */
  robots(memberId: string): Promise<RegisteredRobotView[]> {
    return this.send('GET', `${portalPath(memberId)}/robots`);
  }

  private async send<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(`${this.url}/_emulator${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    const parsed = (text === '' ? undefined : JSON.parse(text)) as unknown;
    if (!response.ok) {
      const refusal = parsed as Partial<ControlErrorBody> | undefined;
      throw new EmulatorControlError(
        response.status,
        refusal?.error ?? 'UNKNOWN',
        `${method} ${path}: ${response.status} ${refusal?.error_description ?? text}`,
      );
    }
    return parsed as T;
  }
}

function portalPath(memberId: string): string {
  return `/portals/${encodeURIComponent(memberId)}`;
}
