import type { Emulator } from '../emulator';
import type { PortalHit } from '../events/event-dispatcher';
import type { Portal } from '../portals/portal';
import type { MethodParams } from './method-params';
import { restErrors, type RestError } from './rest-error';

/** The OAuth application context of a call. */
export interface AppContext {
  /** The request's `auth_connector` ('' when absent): it splits bindings and queues. */
  readonly authConnector: string;
  readonly scopes: readonly string[];
}

export interface Caller {
  readonly userId: number;
  readonly isAdmin: boolean;
  /** null for a user acting in the portal's own UI rather than through the app. */
  readonly app: AppContext | null;
}

/** A method's answer before the envelope: list methods add `total` and `next`. */
export interface MethodOutcome {
  readonly result: unknown;
  readonly total?: number;
  readonly next?: number;
  /** Rows the call returned, for methods whose modelled operating time grows with them. */
  readonly rows?: number;
}

/** The envelope's `time` block (contract §7). */
export interface TimeBlock {
  readonly start: number;
  readonly finish: number;
  readonly duration: number;
  readonly processing: number;
  readonly date_start: string;
  readonly date_finish: string;
  readonly operating: number;
  readonly operating_reset_at: number;
}

export type CallOutcome =
  | { readonly ok: true; readonly outcome: MethodOutcome; readonly time: TimeBlock }
  | { readonly ok: false; readonly error: RestError };

export interface MethodCall {
  readonly emulator: Emulator;
  readonly portal: Portal;
  readonly params: MethodParams;
  readonly caller: Caller;
  readonly hit: PortalHit;
  /** Runs another method within the same HTTP request, as `batch` does. */
  runNested(method: string, params: Record<string, unknown>): Promise<CallOutcome>;
}

export interface RestMethod {
  /** The app scope the method needs; null for methods every app may call. */
  readonly scope: string | null;
  run(call: MethodCall): MethodOutcome | Promise<MethodOutcome>;
}

/** `/rest//Event.Offline.Get.json` and `event.offline.get` name the same method. */
export function normalizeMethodName(path: string): string {
  return path
    .replace(/^\/+|\/+$/g, '')
    .replace(/\.json$/i, '')
    .toLowerCase();
}

/** Methods that exist only for OAuth applications answer WRONG_AUTH_TYPE to anyone else. */
export function requireAppContext(caller: Caller): AppContext {
  if (caller.app === null) throw restErrors.wrongAuthType();
  return caller.app;
}

export function requireAdmin(caller: Caller): void {
  if (!caller.isAdmin) throw restErrors.accessDenied();
}
