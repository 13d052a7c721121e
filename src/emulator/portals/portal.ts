import type { Clock } from '../clock';
import { CrmRecords } from '../crm/crm-records';
import { EventBindings } from '../events/event-bindings';
import { PlacementBindings } from './placement-bindings';
import { PortalRobots } from './portal-robots';
import { OfflineQueue } from '../offline-queue/offline-queue';
import {
  ENTERPRISE_PLAN_LIMIT,
  LeakyBucket,
  STANDARD_PLAN_LIMIT,
  type RateLimit,
} from '../rest/leaky-bucket';
import { OperatingTimeMeter } from '../rest/operating-time';
import type { PortalFaults } from './portal-faults';
import type { PortalSettings } from './portal-settings';

/**
 * Where the app stands on the portal: `installing` is INSTALLED=N (an app with a UI before
 * BX24.installFinish()), `installed` is INSTALLED=Y.
 */
export type InstallState = 'not-installed' | 'installing' | 'installed' | 'uninstalled';

/** One POST the event sender made, as `GET /_emulator/portals/:memberId/sent` shows it. */
export interface SentEvent {
  readonly url: string;
  readonly event: string;
  /** The raw form-encoded body. */
  readonly body: string;
  readonly contentType: string;
  readonly sentAt: string;
  /** The handler's HTTP status; null when no answer came (refused, timed out). */
  status: number | null;
  responseBody: string;
  error?: string;
}

/** One HTTP request to the portal's REST endpoint, as `GET /_emulator/portals/:memberId/requests` shows it. */
export interface RestRequestRecord {
  readonly method: string;
  /** Commands a batch carried (0 for other methods). */
  readonly commands: number;
  /** The request's auth_connector ('' when absent). */
  readonly authConnector: string;
  /** Wall-clock milliseconds (Unix epoch) when the request arrived. */
  readonly receivedAt: number;
  /** 'ok' or the error code answered (QUERY_LIMIT_EXCEEDED, …). */
  outcome: string;
}

/** Keeps the most recent REST requests only. */
const REQUEST_LOG_SIZE = 200_000;

/** What tests read back through `GET /_emulator/portals/:memberId/stats`. */
export class PortalCounters {
  readonly restCalls = new Map<string, number>();
  httpRequests = 0;
  refreshes = 0;
  invalidGrants = 0;
  rateLimitRefusals = 0;
  /** Calls refused with OPERATION_TIME_LIMIT, batch commands included. */
  operatingLimitRefusals = 0;
  /** ONOFFLINEEVENT POSTs. */
  notificationsSent = 0;
  /** Every event POST, notifications included. */
  eventsSent = 0;
  concurrentOfflineGetNow = 0;
  maxConcurrentOfflineGet = 0;

  countCall(method: string): void {
    this.restCalls.set(method, (this.restCalls.get(method) ?? 0) + 1);
  }

  offlineGetStarted(): void {
    this.concurrentOfflineGetNow++;
    this.maxConcurrentOfflineGet = Math.max(
      this.maxConcurrentOfflineGet,
      this.concurrentOfflineGetNow,
    );
  }

  offlineGetFinished(): void {
    this.concurrentOfflineGetNow--;
  }
}

/** Keeps the recent POSTs only: a long benchmark must not grow memory without bound. */
const SENT_LOG_SIZE = 500;

/** The admin who installs the app; other users are plain users unless a test says otherwise. */
export const INSTALLING_ADMIN_ID = 1;

/** One emulated Bitrix24 portal with the emulated app on it. */
export class Portal {
  readonly queue: OfflineQueue;
  readonly bindings = new EventBindings();
  readonly placements = new PlacementBindings();
  readonly robots = new PortalRobots();
  readonly crm = new CrmRecords();
  readonly rateLimiter: LeakyBucket;
  readonly operatingTime: OperatingTimeMeter;
  readonly counters = new PortalCounters();
  faults: PortalFaults = {};
  private state: InstallState = 'not-installed';
  /** Bumped on every install: tokens of an earlier installation stay dead after a reinstall. */
  private installationNumber = 0;
  private readonly admins = new Map<number, boolean>([[INSTALLING_ADMIN_ID, true]]);
  private readonly sentLog: SentEvent[] = [];
  private readonly requestLog: RestRequestRecord[] = [];
  private lastBulkObjectId = 0;
  private currentApplicationToken: string;
  /** The app version installed on the portal (app.info VERSION); a published update bumps it. */
  private installedVersion = 1;

  constructor(
    readonly memberId: string,
    /** Changes when the portal moves to another domain (the control API's domain route). */
    public domain: string,
    applicationToken: string,
    private baseSettings: PortalSettings,
    clock: Clock,
    private readonly rateLimitOverride: RateLimit | undefined,
  ) {
    this.queue = new OfflineQueue(clock);
    this.rateLimiter = new LeakyBucket(clock);
    this.operatingTime = new OperatingTimeMeter(clock);
    this.currentApplicationToken = applicationToken;
  }

  /** One per app per portal; an app update replaces it (`on-app-update.md`). */
  get applicationToken(): string {
    return this.currentApplicationToken;
  }

  get appVersion(): number {
    return this.installedVersion;
  }

  /** The vendor published a new version and the portal installed it: a new application_token. */
  publishVersion(applicationToken: string): { previousVersion: number; version: number } {
    const previousVersion = this.installedVersion;
    this.installedVersion += 1;
    this.currentApplicationToken = applicationToken;
    // An update takes the app's robots off the list; the app registers them again.
    this.robots.removeAll();
    return { previousVersion, version: this.installedVersion };
  }

  /** The portal's license changed (a payment, an expiry): what app.info answers from now on. */
  changeLicense(
    change: Partial<Pick<PortalSettings, 'appStatus' | 'paymentExpired' | 'days'>>,
  ): void {
    this.baseSettings = { ...this.baseSettings, ...change };
  }

  /** The settings in force: what the portal was created with, overridden by current faults. */
  get settings(): PortalSettings {
    const faults = this.faults;
    return {
      plan: this.baseSettings.plan,
      appStatus: faults.appStatus ?? this.baseSettings.appStatus,
      paymentAllowed: faults.paymentAllowed ?? this.baseSettings.paymentAllowed,
      paymentExpired: faults.paymentExpired ?? this.baseSettings.paymentExpired,
      days: faults.days !== undefined ? faults.days : this.baseSettings.days,
      features: { ...this.baseSettings.features, ...faults.features },
      loopRule: faults.loopRule ?? this.baseSettings.loopRule,
    };
  }

  get rateLimit(): RateLimit {
    if (this.faults.rateLimit !== undefined) return this.faults.rateLimit;
    if (this.rateLimitOverride !== undefined) return this.rateLimitOverride;
    return this.baseSettings.plan === 'enterprise' ? ENTERPRISE_PLAN_LIMIT : STANDARD_PLAN_LIMIT;
  }

  get installState(): InstallState {
    return this.state;
  }

  get installation(): number {
    return this.installationNumber;
  }

  /** The app exists on the portal (INSTALLED=Y or N): its tokens work. */
  get hasApp(): boolean {
    return this.state === 'installing' || this.state === 'installed';
  }

  /** INSTALLED=Y: only now does the portal send events and write offline rows. */
  get isInstalled(): boolean {
    return this.state === 'installed';
  }

  get acceptsEvents(): boolean {
    return this.isInstalled && this.settings.paymentAllowed;
  }

  install(finished: boolean): void {
    this.installationNumber++;
    this.state = finished ? 'installed' : 'installing';
  }

  finishInstall(): void {
    this.state = 'installed';
  }

  /** CRestUtil::CleanApp: the app's handlers and offline queue go with it. */
  uninstall(): void {
    this.state = 'uninstalled';
    this.bindings.removeAll();
    this.placements.removeAll();
    this.robots.removeAll();
    this.queue.removeAll();
  }

  isAdmin(userId: number): boolean {
    return this.admins.get(userId) ?? false;
  }

  setUser(userId: number, admin: boolean): void {
    this.admins.set(userId, admin);
  }

  /** Object ids for bulk-generated events, so every bulk event is a distinct row. */
  takeBulkObjectId(): number {
    return ++this.lastBulkObjectId;
  }

  recordSent(sent: SentEvent): void {
    this.counters.eventsSent++;
    if (sent.event === 'ONOFFLINEEVENT') this.counters.notificationsSent++;
    this.sentLog.push(sent);
    if (this.sentLog.length > SENT_LOG_SIZE) this.sentLog.shift();
  }

  recentlySent(): readonly SentEvent[] {
    return this.sentLog;
  }

  recordRequest(request: RestRequestRecord): void {
    this.requestLog.push(request);
    if (this.requestLog.length > REQUEST_LOG_SIZE) this.requestLog.shift();
  }

  recentRequests(): readonly RestRequestRecord[] {
    return this.requestLog;
  }

  /**
   * The origin its REST endpoint is served at once it moved to another domain (another port of
   * the emulator, so the host changes as in a real move); undefined: the emulator's own.
   */
  origin?: string;
}
