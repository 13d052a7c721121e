import type { RateLimit } from '../rest/leaky-bucket';
import type { AppStatus, PortalFeatures } from './portal-settings';

/**
 * Switches a test flips on one portal (`PUT /_emulator/portals/:memberId/faults`). The first group
 * breaks calls; the second changes the portal's state behind the client's back until cleared.
 */
export interface PortalFaults {
  /** Share of calls (0..1) answered 500 INTERNAL_SERVER_ERROR. */
  readonly errorRate?: number;
  /** Delay before each affected call runs; counts as its operating time. */
  readonly latencyMs?: number;
  /** Share of requests (0..1) that are carried out but never answered: the answer is lost. */
  readonly timeoutRate?: number;
  /**
   * Share of requests (0..1) a gateway in front of the portal answers 502 or 504 with an HTML
   * page, without running them.
   */
  readonly gatewayTimeoutRate?: number;
  /** 503 OVERLOAD_LIMIT. */
  readonly overload?: boolean;
  /** Every REST request of the portal gets PORTAL_DELETED. */
  readonly portalDeleted?: boolean;
  /** A tighter leaky bucket than the plan's. */
  readonly rateLimit?: RateLimit;
  /** 403 WRONG_LICENSE. */
  readonly wrongLicense?: boolean;
  /** insufficient_scope with this HTTP status (the contract's sources disagree: 401 or 403). */
  readonly insufficientScope?: 401 | 403;
  /** Per-method operating-time budget over 10 minutes; beyond it 429 OPERATION_TIME_LIMIT. */
  readonly operatingLimitSeconds?: number;
  /**
   * Limits the call faults above to these methods, nested batch commands included. Unset, they hit
   * each HTTP request once (a batch is then one call).
   */
  readonly methods?: readonly string[];

  /**
   * `event.offline.get` returns rows tied in every ordered field (one TIMESTAMP_X second) newest
   * ID first: MySQL leaves their order undefined, and a client must not rely on insertion order.
   */
  readonly unstableTies?: boolean;

  /** The auth_connector loop rule of contract §10 (on unless switched off). */
  readonly loopRule?: boolean;
  readonly paymentAllowed?: boolean;
  readonly paymentExpired?: boolean;
  readonly days?: number | null;
  readonly appStatus?: AppStatus;
  readonly features?: Partial<PortalFeatures>;
}

/**
 * Whether the call faults concern a call. `topLevel` is the HTTP request's own method (for a batch:
 * `batch`); nested batch commands are hit only when `methods` names them.
 */
export function faultsConcern(faults: PortalFaults, method: string, topLevel: boolean): boolean {
  return faults.methods === undefined ? topLevel : faults.methods.includes(method);
}
