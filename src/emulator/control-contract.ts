/**
 * Request and answer shapes of the control API (`${url}/_emulator/…`), shared by the routes and
 * EmulatorControlClient. Everything is JSON.
 */
import type { OfflineQueueCounts } from './offline-queue/offline-queue';
import type { InstallState, RestRequestRecord, SentEvent } from './portals/portal';
import type { PortalFaults } from './portals/portal-faults';
import type { AppStatus, PortalFeatures, PortalPlan } from './portals/portal-settings';
import type {
  BatchBilling,
  OperatingCost,
  OperatingTimeSettings,
  OperatingTimeState,
} from './rest/operating-time';

export type {
  BatchBilling,
  OperatingCost,
  OperatingTimeSettings,
  OperatingTimeState,
  AppStatus,
  InstallState,
  OfflineQueueCounts,
  PortalFaults,
  PortalFeatures,
  PortalPlan,
  RestRequestRecord,
  SentEvent,
};

/** `POST /_emulator/portals`: anything omitted gets a random id or the default. */
export interface CreatePortalRequest {
  readonly memberId?: string;
  readonly domain?: string;
  /** Sets the leaky bucket (standard 2/50, enterprise 5/250) and the default of rest_auth_connector. */
  readonly plan?: PortalPlan;
  /** Default 'F'. */
  readonly appStatus?: AppStatus;
  /** rest_offline_extended defaults to true, rest_auth_connector to (plan === 'enterprise'). */
  readonly features?: Partial<PortalFeatures>;
  /** PAYMENT_ALLOW, default true. */
  readonly paymentAllowed?: boolean;
  readonly paymentExpired?: boolean;
  readonly days?: number | null;
}

export interface CreatedPortal {
  readonly memberId: string;
  readonly domain: string;
  readonly clientEndpoint: string;
  readonly applicationToken: string;
}

/** `event`: an app without UI, ONAPPINSTALL goes to handlerUrl. `ui`: the form its install page gets. */
export type InstallRequest =
  { readonly mode: 'event'; readonly handlerUrl: string } | { readonly mode: 'ui' };

export interface DeliveredEvent {
  readonly url: string;
  /** The handler's HTTP status; null when no answer came. */
  readonly status: number | null;
  readonly body: string;
  readonly error?: string;
}

export interface EventInstallResult {
  readonly delivered: DeliveredEvent;
  /** What ONAPPINSTALL carried, for tests that talk to the portal directly. */
  readonly auth: {
    readonly accessToken: string;
    readonly refreshToken: string;
    readonly applicationToken: string;
  };
}

export interface UiInstallResult {
  /** POST body for the app's install URL. */
  readonly form: {
    readonly AUTH_ID: string;
    readonly AUTH_EXPIRES: string;
    readonly REFRESH_ID: string;
    readonly SERVER_ENDPOINT: string;
    readonly APPLICATION_TOKEN: string;
    readonly APPLICATION_SCOPE: string;
    readonly member_id: string;
    readonly status: AppStatus;
    readonly PLACEMENT: string;
  };
  /** Query string for the app's install URL. */
  readonly query: {
    readonly DOMAIN: string;
    readonly PROTOCOL: string;
    readonly LANG: string;
    readonly APP_SID: string;
  };
}

export interface InstallFinishResult {
  readonly installed: true;
}

export interface OfflineEventInput {
  readonly event: string;
  readonly data?: unknown;
  /** Otherwise md5(EVENT_NAME|json(data)). */
  readonly messageId?: string;
}

/**
 * `POST /_emulator/portals/:memberId/offline-events`: one portal hit that raises `events`, or
 * `count` distinct `event`s (default ONCRMDEALUPDATE) with data `{FIELDS:{ID}}`.
 */
export interface EnqueueOfflineEventsRequest {
  readonly events?: readonly OfflineEventInput[];
  readonly count?: number;
  readonly event?: string;
  /** false stores silently: no ONOFFLINEEVENT, as when a notification is lost. Default true. */
  readonly notify?: boolean;
  /** The acting user (default 1, the admin); 0 is an agent, whose notification carries no tokens. */
  readonly userId?: number;
  /** Treat the hit as the app's own REST call with this auth_connector: the loop rule applies. */
  readonly asAppCall?: { readonly authConnector?: string };
}

export interface EnqueueOfflineEventsResult {
  readonly inserted: number;
  readonly merged: number;
  readonly suppressed: number;
  readonly notificationsSent: number;
}

export interface UninstallRequest {
  readonly clean?: boolean;
}

export interface UninstallResult {
  readonly delivered: readonly DeliveredEvent[];
}

/** `POST /_emulator/portals/:memberId/app-versions`: the portal installs the app's next version. */
export interface PublishVersionResult {
  readonly version: number;
  readonly previousVersion: number;
  /** The portal's new application_token; every later event carries it. */
  readonly applicationToken: string;
  /** ONAPPUPDATE, one per online binding of it. */
  readonly delivered: readonly DeliveredEvent[];
  /** What ONAPPUPDATE carried, for tests that replay or forge it. */
  readonly auth: { readonly accessToken: string; readonly refreshToken: string };
}

/** `POST /_emulator/portals/:memberId/license`: what app.info answers from now on. */
export interface ChangeLicenseRequest {
  readonly appStatus?: AppStatus;
  readonly paymentExpired?: boolean;
  readonly days?: number | null;
  /** Send ONAPPPAYMENT to its online bindings (default true). */
  readonly notify?: boolean;
}

export interface ChangeLicenseResult {
  readonly delivered: readonly DeliveredEvent[];
}

export interface ExpireTokensRequest {
  /** Also expire refresh tokens (they then get invalid_grant). */
  readonly refresh?: boolean;
}

export interface ExpireTokensResult {
  readonly accessTokens: number;
  readonly refreshTokens: number;
}

export interface PortalStats {
  readonly memberId: string;
  readonly domain: string;
  readonly queue: OfflineQueueCounts;
  readonly reservedProcessIds: readonly string[];
  readonly restCalls: Readonly<Record<string, number>>;
  readonly httpRequests: number;
  readonly refreshes: number;
  readonly invalidGrants: number;
  readonly rateLimitRefusals: number;
  /** Calls refused with OPERATION_TIME_LIMIT, batch commands included. */
  readonly operatingLimitRefusals: number;
  /** Per billed method: `time.operating` now, the highest it ever was, `operating_reset_at`. */
  readonly operatingTime: Readonly<
    Record<string, { operatingSeconds: number; peakSeconds: number; resetAt: number }>
  >;
  /** The most event.offline.get requests ever in flight at once on this portal. */
  readonly maxConcurrentOfflineGet: number;
  readonly concurrentOfflineGetNow: number;
  readonly bindings: readonly {
    readonly event: string;
    readonly handler: string;
    readonly offline: boolean;
    readonly connectorId: string;
    readonly userId: number;
    readonly options: { readonly minTimeout?: number };
  }[];
  /** ONOFFLINEEVENT POSTs. */
  readonly notificationsSent: number;
  /** All event POSTs. */
  readonly eventsSent: number;
  /** INSTALLED=Y. */
  readonly installed: boolean;
  readonly installState: InstallState;
  readonly status: AppStatus;
}

export interface IssuedTokensList {
  readonly accessTokens: readonly string[];
  readonly refreshTokens: readonly string[];
  readonly applicationTokens: readonly string[];
}

export interface PurgeReservedRequest {
  /** Default 2952000 (PROCESS_ID_LIFETIME, ≈34 days). */
  readonly olderThanSeconds?: number;
}

export interface PurgeReservedResult {
  readonly purged: number;
}

export interface AuthorizationCodeRequest {
  /** Default 1, the admin who installed the app. */
  readonly userId?: number;
  /** Whether that user is a portal admin (default: unchanged; user 1 is an admin). */
  readonly admin?: boolean;
}

export interface AuthorizationCodeResult {
  readonly code: string;
  readonly expiresIn: number;
}

/** `POST /_emulator/portals/:memberId/user-actions`: a user does something in the portal's UI. */
export interface UserActionRequest {
  readonly method: string;
  readonly params?: Readonly<Record<string, unknown>>;
  readonly userId?: number;
}

export type UserActionResult =
  | { readonly result: unknown; readonly total?: number; readonly next?: number }
  | { readonly error: string; readonly error_description: string };

export interface ClockAdvanceRequest {
  readonly seconds: number;
}

export interface ClockState {
  /** The emulator's current time, ISO-8601 UTC. */
  readonly now: string;
}

/** Every control API refusal. */
export interface ControlErrorBody {
  readonly error: string;
  readonly error_description: string;
}

/**
 * `POST /_emulator/portals/:memberId/crm/deals`: stores deals as if created in the portal's UI
 * long ago (no events, no rate limit): `deals` as given, or `count` deals titled "Deal <n>".
 */
export interface SeedDealsRequest {
  readonly deals?: readonly Readonly<Record<string, unknown>>[];
  readonly count?: number;
}

export interface SeedDealsResult {
  /** IDs of the stored deals, in order. */
  readonly ids: readonly number[];
}

/**
 * `POST /_emulator/portals/:memberId/app-frames`: a user opens the app (or one of its placements).
 * The answer is the form and query a browser posts to the app's URL inside Bitrix24's iframe.
 */
export interface OpenAppFrameRequest {
  /** Default 1, the admin who installed the app. */
  readonly userId?: number;
  /** Whether that user is a portal admin (default: unchanged; user 1 is an admin). */
  readonly admin?: boolean;
  /** Default 'DEFAULT' (the app's main page). */
  readonly placement?: string;
  /** Sent as JSON; omitted, the form carries the string "undefined" as Bitrix24 does. */
  readonly placementOptions?: Readonly<Record<string, unknown>>;
}

export interface AppFrameForm {
  readonly form: {
    readonly AUTH_ID: string;
    readonly AUTH_EXPIRES: string;
    readonly REFRESH_ID: string;
    readonly SERVER_ENDPOINT: string;
    readonly APPLICATION_TOKEN: string;
    readonly member_id: string;
    readonly status: AppStatus;
    readonly PLACEMENT: string;
    readonly PLACEMENT_OPTIONS: string;
  };
  readonly query: {
    readonly DOMAIN: string;
    readonly PROTOCOL: string;
    readonly LANG: string;
    readonly APP_SID: string;
  };
}

/** `POST /_emulator/portals/:memberId/domain`: the portal changes its domain. */
export interface MoveDomainRequest {
  readonly domain: string;
  /**
   * The move is not applied yet and loops: the old address redirects to the new one and the new
   * one back (x3group-dev/bitrix24-api-laravel PR #21). OAuth answers keep the old address.
   */
  readonly loop?: boolean;
}

export interface PortalAddress {
  readonly domain: string;
  readonly clientEndpoint: string;
}

export interface MovedDomain {
  readonly memberId: string;
  /** The address before the move: its REST path answers 302 with `Location` at `to`. */
  readonly from: PortalAddress;
  /** The new address (on another port of the emulator, so another host). */
  readonly to: PortalAddress;
  readonly loop: boolean;
}

/**
 * `POST /_emulator/portals/:memberId/robots/:code/run`: a document reaches the stage the robot
 * sits on, and the portal POSTs the robot's run to its HANDLER with a fresh event_token.
 */
export interface RunRobotRequest {
  /** The deal's document id, e.g. 'DEAL_12'; default a new DEAL_<n>. */
  readonly documentId?: string;
  /** The property values the user set; a property left out gets its Default. */
  readonly properties?: Readonly<Record<string, unknown>>;
  /** Overrides the robot's USE_SUBSCRIPTION (the user's choice when it registered none). */
  readonly useSubscription?: boolean;
  /** How long the robot waits for its answer, in seconds; default 0, no limit. */
  readonly timeoutDuration?: number;
}

export interface RobotRunResult {
  readonly eventToken: string;
  readonly workflowId: string;
  readonly documentId: readonly string[];
  readonly documentType: readonly string[];
  readonly useSubscription: 'Y' | 'N';
  readonly timeoutDuration: number;
  readonly delivered: DeliveredEvent;
}

/** One bizproc.event.send the portal accepted, as `GET …/robot-answers` lists it. */
export interface RobotAnswer {
  readonly eventToken: string;
  readonly code: string;
  readonly documentId: readonly string[];
  readonly returnValues: unknown;
  readonly logMessage: string;
  readonly answeredAt: string;
}

/** One robot the app registered, as `GET /_emulator/portals/:memberId/robots` shows it. */
export interface RegisteredRobotView {
  readonly code: string;
  readonly handler: string;
  readonly authUserId: number;
  readonly useSubscription: string;
  readonly name: unknown;
  readonly description: unknown;
  /** Keyed by property code, each property's own keys upper-cased (NAME, TYPE, OPTIONS, …). */
  readonly properties: Readonly<Record<string, unknown>>;
  readonly returnProperties: Readonly<Record<string, unknown>>;
}
