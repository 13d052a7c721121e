import type {
  AppFrameForm,
  ChangeLicenseRequest,
  ChangeLicenseResult,
  PublishVersionResult,
  OpenAppFrameRequest,
  AuthorizationCodeRequest,
  AuthorizationCodeResult,
  ClockAdvanceRequest,
  ClockState,
  CreatePortalRequest,
  CreatedPortal,
  DeliveredEvent,
  EnqueueOfflineEventsRequest,
  EnqueueOfflineEventsResult,
  EventInstallResult,
  ExpireTokensRequest,
  ExpireTokensResult,
  InstallFinishResult,
  InstallRequest,
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
} from '../control-contract';
import type { Emulator } from '../emulator';
import { PortalHit, type RaiseOutcome } from '../events/event-dispatcher';
import { assertValidHandlerUrl } from '../events/handler-url';
import type { IssuedTokens } from '../oauth/token-registry';
import { INSTALLING_ADMIN_ID, type Portal } from '../portals/portal';
import { formatPortalDateTime } from '../portals/portal-time';
import { randomLowercaseAlphanumerics, randomMd5Shaped } from '../random-identifiers';
import type { RestCallRunner } from '../rest/call-runner';
import { defaultCrmFields } from '../rest/methods/crm-methods';
import { RestError } from '../rest/rest-error';
import { normalizeMethodName } from '../rest/rest-method';
import { ControlError } from './control-error';

/** EventOfflineTable::PROCESS_ID_LIFETIME. */
const PROCESS_ID_LIFETIME_SECONDS = 2_952_000;
const AUTHORIZATION_CODE_LIFETIME_SECONDS = 30;
const DEFAULT_BULK_EVENT = 'ONCRMDEALUPDATE';

/** What the control API does: the portal-side actions a test or a vendor triggers by hand. */
export class EmulatorControl {
  constructor(
    private readonly emulator: Emulator,
    private readonly runner: RestCallRunner,
  ) {}

  createPortal(request: CreatePortalRequest): CreatedPortal {
    const portal = this.emulator.createPortal(request);
    if (portal === undefined) {
      throw new ControlError(409, 'PORTAL_EXISTS', 'A portal with that memberId or domain exists');
    }
    return {
      memberId: portal.memberId,
      domain: portal.domain,
      clientEndpoint: this.emulator.clientEndpoint(portal),
      applicationToken: portal.applicationToken,
    };
  }

  async install(
    memberId: string,
    request: InstallRequest,
  ): Promise<EventInstallResult | UiInstallResult> {
    const portal = this.portal(memberId);
    if (portal.hasApp) throw new ControlError(409, 'ALREADY_INSTALLED', 'The app is installed');
    return request.mode === 'event'
      ? this.installByEvent(portal, request.handlerUrl)
      : this.installWithUi(portal);
  }

  /** Apps without a UI: INSTALLED=Y at once, the install URL bound as the ONAPPINSTALL handler. */
  private async installByEvent(portal: Portal, handlerUrl: string): Promise<EventInstallResult> {
    try {
      assertValidHandlerUrl(handlerUrl);
    } catch (error) {
      if (error instanceof RestError) throw new ControlError(400, error.code, error.description);
      throw error;
    }
    portal.install(true);
    const binding = portal.bindings.add({
      event: 'ONAPPINSTALL',
      handler: handlerUrl,
      userId: 0,
      connectorId: '',
      offline: false,
      options: {},
    });
    // A fresh installation has no handlers yet, so the binding cannot be a duplicate.
    if (binding === undefined) throw new Error('ONAPPINSTALL is already bound');
    const tokens = this.issueAdminTokens(portal);
    const sent = await this.emulator.events.deliverAppInstall(portal, binding, tokens);
    return {
      delivered: delivered(sent),
      auth: {
        accessToken: tokens.accessToken,
        refreshToken: tokens.refreshToken,
        applicationToken: portal.applicationToken,
      },
    };
  }

  /** Apps with a UI: INSTALLED=N until BX24.installFinish(); the install page gets this form. */
  private installWithUi(portal: Portal): UiInstallResult {
    portal.install(false);
    const tokens = this.issueAdminTokens(portal);
    return {
      form: {
        AUTH_ID: tokens.accessToken,
        AUTH_EXPIRES: String(this.emulator.tokens.accessLifetimeSeconds),
        REFRESH_ID: tokens.refreshToken,
        SERVER_ENDPOINT: this.emulator.serverEndpoint,
        APPLICATION_TOKEN: portal.applicationToken,
        APPLICATION_SCOPE: this.emulator.options.scope,
        member_id: portal.memberId,
        status: portal.settings.appStatus,
        PLACEMENT: 'DEFAULT',
      },
      query: {
        DOMAIN: portal.domain,
        // The emulator speaks plain http.
        PROTOCOL: '0',
        LANG: 'en',
        APP_SID: randomLowercaseAlphanumerics(32),
      },
    };
  }

  /** What BX24.installFinish() does. */
  finishInstall(memberId: string): InstallFinishResult {
    const portal = this.portal(memberId);
    if (!portal.hasApp) throw new ControlError(409, 'NOT_INSTALLED', 'The app is not installed');
    portal.finishInstall();
    return { installed: true };
  }

  /** One portal hit raising events, exactly as CRM activity would (merge, payment, loop rule). */
  enqueueOfflineEvents(
    memberId: string,
    request: EnqueueOfflineEventsRequest,
  ): EnqueueOfflineEventsResult {
    const portal = this.portal(memberId);
    const hit = new PortalHit(portal, {
      userId: request.userId ?? INSTALLING_ADMIN_ID,
      appCall:
        request.asAppCall === undefined
          ? undefined
          : { authConnector: request.asAppCall.authConnector ?? '' },
    });
    const totals: RaiseOutcome = { inserted: 0, merged: 0, suppressed: 0 };
    const add = (outcome: RaiseOutcome): void => {
      totals.inserted += outcome.inserted;
      totals.merged += outcome.merged;
      totals.suppressed += outcome.suppressed;
    };
    for (const input of request.events ?? []) {
      add(
        this.emulator.events.raise(
          hit,
          input.event.toUpperCase(),
          input.data ?? null,
          input.messageId,
        ),
      );
    }
    const bulkEvent = (request.event ?? DEFAULT_BULK_EVENT).toUpperCase();
    for (let index = 0; index < (request.count ?? 0); index++) {
      const data = { FIELDS: { ID: String(portal.takeBulkObjectId()) } };
      add(this.emulator.events.raise(hit, bulkEvent, data));
    }
    const notificationsSent = request.notify === false ? 0 : this.emulator.events.finishHit(hit);
    return { ...totals, notificationsSent };
  }

  /** ONAPPUNINSTALL (token-less), then the app's tokens, handlers and queue are gone. */
  async uninstall(memberId: string, request: UninstallRequest): Promise<UninstallResult> {
    const portal = this.portal(memberId);
    if (!portal.hasApp) throw new ControlError(409, 'NOT_INSTALLED', 'The app is not installed');
    const handlers = portal.isInstalled ? portal.bindings.forEvent('ONAPPUNINSTALL', false) : [];
    portal.uninstall();
    const sent = await Promise.all(
      handlers.map((binding) =>
        this.emulator.events.deliverAppUninstall(portal, binding, request.clean === true),
      ),
    );
    return { delivered: sent.map(delivered) };
  }

  /**
   * The vendor published a new version and the portal installed it: a new application_token,
   * then ONAPPUPDATE with the updating admin's auth to every online binding of it.
   */
  async publishVersion(memberId: string): Promise<PublishVersionResult> {
    const portal = this.portal(memberId);
    if (!portal.hasApp) throw new ControlError(409, 'NOT_INSTALLED', 'The app is not installed');
    const { previousVersion, version } = portal.publishVersion(randomMd5Shaped());
    const tokens = this.issueAdminTokens(portal);
    const handlers = portal.isInstalled ? portal.bindings.forEvent('ONAPPUPDATE', false) : [];
    const sent = await Promise.all(
      handlers.map((binding) =>
        this.emulator.events.deliverAppUpdate(portal, binding, tokens, previousVersion),
      ),
    );
    return {
      version,
      previousVersion,
      applicationToken: portal.applicationToken,
      delivered: sent.map(delivered),
      auth: { accessToken: tokens.accessToken, refreshToken: tokens.refreshToken },
    };
  }

  /** The portal's license changed (paid, renewed, expired); ONAPPPAYMENT goes out unless told not to. */
  async changeLicense(
    memberId: string,
    request: ChangeLicenseRequest,
  ): Promise<ChangeLicenseResult> {
    const portal = this.portal(memberId);
    portal.changeLicense({
      ...(request.appStatus === undefined ? {} : { appStatus: request.appStatus }),
      ...(request.paymentExpired === undefined ? {} : { paymentExpired: request.paymentExpired }),
      ...(request.days === undefined ? {} : { days: request.days }),
    });
    const handlers =
      request.notify !== false && portal.isInstalled
        ? portal.bindings.forEvent('ONAPPPAYMENT', false)
        : [];
    const sent = await Promise.all(
      handlers.map((binding) => this.emulator.events.deliverAppPayment(portal, binding)),
    );
    return { delivered: sent.map(delivered) };
  }

  expireTokens(memberId: string, request: ExpireTokensRequest): ExpireTokensResult {
    const portal = this.portal(memberId);
    return this.emulator.tokens.expirePortalTokens(portal.memberId, {
      refresh: request.refresh === true,
    });
  }

  setFaults(memberId: string, faults: PortalFaults): PortalFaults {
    const portal = this.portal(memberId);
    portal.faults = {
      ...faults,
      ...(faults.methods === undefined ? {} : { methods: faults.methods.map(normalizeMethodName) }),
    };
    return portal.faults;
  }

  /** Sets the portal's operating-time limit, modelled costs per method and batch billing. */
  setOperatingTime(memberId: string, settings: OperatingTimeSettings): OperatingTimeState {
    const portal = this.portal(memberId);
    const costs =
      settings.costs === undefined
        ? undefined
        : Object.fromEntries(
            Object.entries(settings.costs).map(([method, cost]) => [
              normalizeMethodName(method),
              cost,
            ]),
          );
    return portal.operatingTime.configure({ ...settings, ...(costs ? { costs } : {}) });
  }

  clearFaults(memberId: string): PortalFaults {
    const portal = this.portal(memberId);
    portal.faults = {};
    return portal.faults;
  }

  stats(memberId: string): PortalStats {
    const portal = this.portal(memberId);
    const { counters } = portal;
    return {
      memberId: portal.memberId,
      domain: portal.domain,
      queue: portal.queue.counts(),
      reservedProcessIds: portal.queue.reservedProcessIds(),
      restCalls: Object.fromEntries(counters.restCalls),
      httpRequests: counters.httpRequests,
      refreshes: counters.refreshes,
      invalidGrants: counters.invalidGrants,
      rateLimitRefusals: counters.rateLimitRefusals,
      operatingLimitRefusals: counters.operatingLimitRefusals,
      operatingTime: portal.operatingTime.report(),
      maxConcurrentOfflineGet: counters.maxConcurrentOfflineGet,
      concurrentOfflineGetNow: counters.concurrentOfflineGetNow,
      bindings: portal.bindings.all().map((binding) => ({
        event: binding.event,
        handler: binding.handler,
        offline: binding.offline,
        connectorId: binding.connectorId,
        userId: binding.userId,
        options: binding.options,
      })),
      notificationsSent: counters.notificationsSent,
      eventsSent: counters.eventsSent,
      installed: portal.isInstalled,
      installState: portal.installState,
      status: portal.settings.appStatus,
    };
  }

  sent(memberId: string): readonly SentEvent[] {
    return this.portal(memberId).recentlySent();
  }

  /** The REST requests the portal received, oldest first. */
  requests(memberId: string): readonly RestRequestRecord[] {
    return this.portal(memberId).recentRequests();
  }

  seedDeals(memberId: string, request: SeedDealsRequest): SeedDealsResult {
    const portal = this.portal(memberId);
    const deals =
      request.deals ??
      Array.from({ length: request.count ?? 0 }, (_, index) => ({ TITLE: `Deal ${index + 1}` }));
    const now = formatPortalDateTime(this.emulator.clock.now());
    const ids = deals.map((fields) =>
      portal.crm.add('deal', { ...defaultCrmFields('deal', now), ...fields }),
    );
    return { ids };
  }

  /** Runs Bitrix's daily purge of reserved rows now. */
  purgeReserved(memberId: string, request: PurgeReservedRequest): PurgeReservedResult {
    const olderThanSeconds = request.olderThanSeconds ?? PROCESS_ID_LIFETIME_SECONDS;
    return { purged: this.portal(memberId).queue.purgeReserved(olderThanSeconds * 1000) };
  }

  /** A user opened the app: a code the app exchanges at /oauth/token/ (grant_type=authorization_code). */
  createAuthorizationCode(
    memberId: string,
    request: AuthorizationCodeRequest,
  ): AuthorizationCodeResult {
    const portal = this.portal(memberId);
    if (!portal.hasApp) throw new ControlError(409, 'NOT_INSTALLED', 'The app is not installed');
    const userId = request.userId ?? INSTALLING_ADMIN_ID;
    if (request.admin !== undefined) portal.setUser(userId, request.admin);
    const code = this.emulator.tokens.issueAuthorizationCode({
      memberId: portal.memberId,
      userId,
      installation: portal.installation,
      scope: this.emulator.options.scope,
    });
    return { code, expiresIn: AUTHORIZATION_CODE_LIFETIME_SECONDS };
  }

  /** A user opens the app: a fresh chain for that user and the frame form Bitrix24 posts. */
  openAppFrame(memberId: string, request: OpenAppFrameRequest): AppFrameForm {
    const portal = this.portal(memberId);
    if (!portal.hasApp) throw new ControlError(409, 'NOT_INSTALLED', 'The app is not installed');
    const userId = request.userId ?? INSTALLING_ADMIN_ID;
    if (request.admin !== undefined) portal.setUser(userId, request.admin);
    const tokens = this.emulator.tokens.issue({
      memberId: portal.memberId,
      userId,
      installation: portal.installation,
      scope: this.emulator.options.scope,
    });
    return {
      form: {
        AUTH_ID: tokens.accessToken,
        AUTH_EXPIRES: String(this.emulator.tokens.accessLifetimeSeconds),
        REFRESH_ID: tokens.refreshToken,
        SERVER_ENDPOINT: this.emulator.serverEndpoint,
        APPLICATION_TOKEN: portal.applicationToken,
        member_id: portal.memberId,
        status: portal.settings.appStatus,
        PLACEMENT: request.placement ?? 'DEFAULT',
        PLACEMENT_OPTIONS:
          request.placementOptions === undefined
            ? 'undefined'
            : JSON.stringify(request.placementOptions),
      },
      query: {
        DOMAIN: portal.domain,
        PROTOCOL: '0',
        LANG: 'en',
        APP_SID: randomLowercaseAlphanumerics(32),
      },
    };
  }

  /** A user acts in the portal's own UI: no app context, no rate limit, no faults, no loop rule. */
  async userAction(memberId: string, request: UserActionRequest): Promise<UserActionResult> {
    const portal = this.portal(memberId);
    const userId = request.userId ?? INSTALLING_ADMIN_ID;
    const caller = { userId, isAdmin: portal.isAdmin(userId), app: null };
    const hit = new PortalHit(portal, { userId });
    const call = await this.runner.run(
      { portal, caller, hit },
      normalizeMethodName(request.method),
      request.params ?? {},
      'portal-ui',
    );
    this.emulator.events.finishHit(hit);
    if (!call.ok) return { error: call.error.code, error_description: call.error.description };
    const { result, next, total } = call.outcome;
    return {
      result,
      ...(next === undefined ? {} : { next }),
      ...(total === undefined ? {} : { total }),
    };
  }

  tokens(memberId: string | undefined): IssuedTokensList {
    const portals =
      memberId === undefined ? [...this.emulator.portals.all()] : [this.portal(memberId)];
    return {
      ...this.emulator.tokens.issuedTokens(memberId),
      applicationTokens: portals.map((portal) => portal.applicationToken),
    };
  }

  advanceClock(request: ClockAdvanceRequest): ClockState {
    this.emulator.clock.advance(request.seconds * 1000);
    return { now: new Date(this.emulator.clock.now()).toISOString() };
  }

  async moveDomain(memberId: string, request: MoveDomainRequest): Promise<MovedDomain> {
    const portal = this.portal(memberId);
    const domain = request.domain.toLowerCase();
    if (!this.emulator.portals.isFreeFor(portal, domain)) {
      throw new ControlError(409, 'DOMAIN_TAKEN', `The domain ${domain} is taken`);
    }
    const from = { domain: portal.domain, clientEndpoint: this.emulator.clientEndpoint(portal) };
    const loop = request.loop ?? false;
    const clientEndpoint = await this.emulator.moveDomain(portal, domain, loop);
    return { memberId, from, to: { domain, clientEndpoint }, loop };
  }

  /**
   * A deal reaches the stage the robot sits on: the portal POSTs the run to the robot's HANDLER
   * (form, bracket keys) with a fresh event_token, and waits for bizproc.event.send when
   * use_subscription is Y.
   */
  async runRobot(
    memberId: string,
    code: string,
    request: RunRobotRequest,
  ): Promise<RobotRunResult> {
    const portal = this.portal(memberId);
    if (!portal.isInstalled)
      throw new ControlError(409, 'NOT_INSTALLED', 'The app is not installed');
    const robot = portal.robots.get(code);
    if (robot === undefined) {
      throw new ControlError(404, 'ROBOT_NOT_FOUND', `The app has no robot ${code} on the portal`);
    }
    const useSubscription =
      (request.useSubscription ?? robot.useSubscription.toUpperCase() === 'Y') ? 'Y' : 'N';
    const timeoutDuration = request.timeoutDuration ?? 0;
    const documentId = [
      'crm',
      'CCrmDocumentDeal',
      request.documentId ?? `DEAL_${portal.takeBulkObjectId()}`,
    ];
    const documentType = ['crm', 'CCrmDocumentDeal', 'DEAL'];
    const workflowId = randomWorkflowId();
    const eventToken = `${workflowId}|A${randomLowercaseAlphanumerics(8)}|${randomLowercaseAlphanumerics(32)}.${randomMd5Shaped()}`;
    const properties: Record<string, unknown> = {};
    for (const [key, property] of Object.entries(robot.properties)) {
      const value = request.properties?.[key] ?? (property as { DEFAULT?: unknown }).DEFAULT;
      if (value !== undefined && value !== null) properties[key] = value;
    }
    const now = this.emulator.clock.now();
    portal.robots.startRun({
      eventToken,
      code,
      workflowId,
      documentId,
      waits: useSubscription === 'Y',
      deadlineMs: timeoutDuration > 0 ? now + timeoutDuration * 1000 : null,
      startedAtMs: now,
    });
    const sent = await this.emulator.events.deliverRobotRun(
      portal,
      robot.handler,
      {
        workflow_id: workflowId,
        code,
        document_id: documentId,
        document_type: documentType,
        event_token: eventToken,
        properties,
        use_subscription: useSubscription,
        timeout_duration: String(timeoutDuration),
      },
      robot.authUserId,
    );
    return {
      eventToken,
      workflowId,
      documentId,
      documentType,
      useSubscription,
      timeoutDuration,
      delivered: delivered(sent),
    };
  }

  robotAnswers(memberId: string): readonly RobotAnswer[] {
    return this.portal(memberId).robots.recordedAnswers();
  }

  robots(memberId: string): RegisteredRobotView[] {
    return this.portal(memberId)
      .robots.all()
      .map((robot) => ({
        code: robot.code,
        handler: robot.handler,
        authUserId: robot.authUserId,
        useSubscription: robot.useSubscription,
        name: robot.name,
        description: robot.description,
        properties: robot.properties,
        returnProperties: robot.returnProperties,
      }));
  }

  private issueAdminTokens(portal: Portal): IssuedTokens {
    return this.emulator.tokens.issue({
      memberId: portal.memberId,
      userId: INSTALLING_ADMIN_ID,
      installation: portal.installation,
      scope: this.emulator.options.scope,
    });
  }

  private portal(memberId: string): Portal {
    const portal = this.emulator.portals.findByMemberId(memberId);
    if (portal === undefined) {
      throw new ControlError(404, 'PORTAL_NOT_FOUND', `No portal with memberId ${memberId}`);
    }
    return portal;
  }
}

/** Bitrix24's workflow ids look like `55c1dc1c3f0d75.78875596` (uniqid with more entropy). */
function randomWorkflowId(): string {
  return `${randomMd5Shaped().slice(0, 14)}.${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`;
}

function delivered(sent: SentEvent): DeliveredEvent {
  return {
    url: sent.url,
    status: sent.status,
    body: sent.responseBody,
    ...(sent.error === undefined ? {} : { error: sent.error }),
  };
}
