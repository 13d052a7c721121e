export type PortalPlan = 'standard' | 'enterprise';

/** AppTable status letters: free, demo, trial, paid, local, subscription (contract §5). */
export type AppStatus = 'F' | 'D' | 'T' | 'P' | 'L' | 'S';

export interface PortalFeatures {
  /** `clear=0` and process_id reservation; without it `get` with clear=0 is WRONG_LICENSE. */
  readonly rest_offline_extended: boolean;
  /** The `auth_connector` parameter (Professional plans and higher). */
  readonly rest_auth_connector: boolean;
}

/** A portal's commercial and feature state as the app sees it. */
export interface PortalSettings {
  readonly plan: PortalPlan;
  readonly appStatus: AppStatus;
  /** PAYMENT_ALLOW: without it no offline rows are written, no events go out, refreshes fail. */
  readonly paymentAllowed: boolean;
  readonly paymentExpired: boolean;
  readonly days: number | null;
  readonly features: PortalFeatures;
  readonly loopRule: boolean;
}
