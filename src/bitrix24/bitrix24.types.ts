/** Bitrix24 wire shapes (see bitrix24-contract.md). Field names are Bitrix24's own. */

/** Success body of `${BITRIX24_OAUTH_URL}/oauth/token/` (contract §6). */
export interface OAuthTokenResponse {
  access_token: string;
  refresh_token: string;
  expires: number;
  expires_in: number;
  member_id: string;
  client_endpoint: string;
  server_endpoint: string;
  /** The OAuth server's host name, not the portal's. */
  domain: string;
  status: string;
  scope: string;
  user_id?: number;
}

/** The `time` block of every REST answer (contract §7). */
export interface RestTime {
  start: number;
  finish: number;
  duration: number;
  processing: number;
  date_start: string;
  date_finish: string;
  operating?: number;
  operating_reset_at?: number;
}

export interface RestResponse<T> {
  result: T;
  total?: number;
  next?: number;
  time?: RestTime;
}

export interface RestErrorBody {
  error: string;
  error_description?: string;
  [extra: string]: unknown;
}

/** One row of event.offline.get (contract §1). */
export interface OfflineEvent {
  ID: string;
  TIMESTAMP_X: string;
  EVENT_NAME: string;
  EVENT_DATA: unknown;
  EVENT_ADDITIONAL: unknown;
  MESSAGE_ID: string;
}

/** One row of event.offline.list: the get fields plus reservation and error flags (contract §2). */
export interface OfflineListRow extends OfflineEvent {
  PROCESS_ID: string;
  ERROR: '0' | '1';
}

export interface OfflineGetResult {
  process_id: string | null;
  events: OfflineEvent[];
}

/** event.get rows (contract §3). */
export type BoundHandler =
  | { event: string; handler: string; auth_type: string; offline: 0 }
  | { event: string; connector_id: string; offline: 1 };

export interface BatchCommand {
  method: string;
  params?: Record<string, unknown>;
}

export interface BatchResult {
  result: Record<string, unknown>;
  errors: Record<string, RestErrorBody>;
  total: Record<string, number>;
  next: Record<string, number>;
  time?: RestTime;
}

/** app.info (contract §9). There is no member_id in it. */
export interface AppInfo {
  ID: number;
  CODE: string;
  VERSION: number | string;
  STATUS: string;
  INSTALLED: boolean;
  PAYMENT_EXPIRED: 'Y' | 'N';
  DAYS: number | null;
  LANGUAGE_ID?: string;
  LICENSE?: string;
  LICENSE_TYPE?: string;
  LICENSE_FAMILY?: string;
}
