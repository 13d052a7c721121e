/** Lifecycle of one installation. Transitions are explicit (see PortalsService). */
export const PORTAL_STATUSES = [
  'new',
  'active',
  'needs_reinstall',
  'payment_required',
  'uninstalled',
  'deleted',
] as const;
export type PortalStatus = (typeof PORTAL_STATUSES)[number];

/** Bitrix24's application status letters (AppTable constants). */
export const PLAN_STATUSES = ['F', 'D', 'T', 'P', 'L', 'S'] as const;
export type PlanStatus = (typeof PLAN_STATUSES)[number];

export const DELIVERY_MODES = ['exactly-once', 'at-most-once'] as const;
export type DeliveryMode = (typeof DELIVERY_MODES)[number];
