import qs from 'qs';
import type { Emulator } from '../emulator';
import type { IssuedTokens } from '../oauth/token-registry';
import type { Portal, SentEvent } from '../portals/portal';
import type { EventBinding } from './event-bindings';
import { EVENT_CATALOG } from './event-catalog';
import { FORM_CONTENT_TYPE } from './event-sender';

/** Who or what made the portal raise events. */
export interface EventCause {
  /** The acting user; 0 for agents and robots, whose events carry no tokens. */
  readonly userId: number;
  /** Set when the hit is the app's own REST call: the loop rule (§10) compares its auth_connector. */
  readonly appCall?: { readonly authConnector: string };
}

/**
 * One PHP hit on the portal: a REST request (a whole batch included), a UI action, an agent run.
 * ONOFFLINEEVENT is decided once per hit, after it wrote its offline rows.
 */
export class PortalHit {
  offlineRowsWritten = false;

  constructor(
    readonly portal: Portal,
    readonly cause: EventCause,
  ) {}
}

export interface RaiseOutcome {
  inserted: number;
  merged: number;
  /** Offline rows not written: no offline binding, app not installed or unpaid, loop rule. */
  suppressed: number;
}

const DEFAULT_MIN_TIMEOUT_SECONDS = 1;
const LANGUAGE_ID = 'en';

/** Turns portal activity into offline rows and handler POSTs, as Bitrix's event sender does. */
export class EventDispatcher {
  constructor(private readonly emulator: Emulator) {}

  /** The portal raised an event: store it for offline bindings, POST it to online ones. */
  raise(hit: PortalHit, eventName: string, data: unknown, messageId?: string): RaiseOutcome {
    const { portal, cause } = hit;
    const outcome: RaiseOutcome = { inserted: 0, merged: 0, suppressed: 0 };
    const { loopRule } = portal.settings;
    const accepting = portal.acceptsEvents;
    const offlineBindings = accepting ? portal.bindings.forEvent(eventName, true) : [];
    if (offlineBindings.length === 0) outcome.suppressed++;
    for (const binding of offlineBindings) {
      if (loopRule && cause.appCall?.authConnector === binding.connectorId) {
        outcome.suppressed++;
        continue;
      }
      const written = portal.queue.write({
        eventName,
        eventData: data,
        userId: cause.userId,
        connectorId: binding.connectorId,
        messageId,
      });
      outcome[written]++;
      hit.offlineRowsWritten = true;
    }
    if (accepting) {
      const sendsRefreshToken = EVENT_CATALOG.get(eventName)?.sendsRefreshToken ?? false;
      for (const binding of portal.bindings.forEvent(eventName, false)) {
        const tokens = this.eventTokens(portal, binding.userId || cause.userId);
        void this.deliver(
          portal,
          binding,
          eventName,
          data,
          this.auth(portal, tokens, sendsRefreshToken),
        );
      }
    }
    return outcome;
  }

  /**
   * End of a hit: if it wrote offline rows, ONOFFLINEEVENT goes to each handler whose minTimeout
   * window has passed (0 = once per hit). Suppressed notifications are never re-sent.
   */
  finishHit(hit: PortalHit): number {
    const { portal } = hit;
    if (!hit.offlineRowsWritten || !portal.acceptsEvents) return 0;
    const now = this.emulator.clock.now();
    let notified = 0;
    for (const binding of portal.bindings.forEvent('ONOFFLINEEVENT', false)) {
      const minTimeoutMs = (binding.options.minTimeout ?? DEFAULT_MIN_TIMEOUT_SECONDS) * 1000;
      const last = binding.lastNotifiedAtMs;
      if (minTimeoutMs > 0 && last !== undefined && now < last + minTimeoutMs) continue;
      binding.lastNotifiedAtMs = now;
      const tokens = this.eventTokens(portal, binding.userId || hit.cause.userId);
      void this.deliver(portal, binding, 'ONOFFLINEEVENT', [], this.auth(portal, tokens, true));
      notified++;
    }
    return notified;
  }

  /** ONAPPINSTALL for apps without a UI: full auth including the refresh token. */
  deliverAppInstall(
    portal: Portal,
    binding: EventBinding,
    tokens: IssuedTokens,
  ): Promise<SentEvent> {
    const data = { VERSION: String(portal.appVersion), ACTIVE: 'Y', INSTALLED: 'Y', LANGUAGE_ID };
    return this.deliver(portal, binding, 'ONAPPINSTALL', data, this.auth(portal, tokens, true));
  }

  /**
   * ONAPPUPDATE (`on-app-update.md`): the updating user's full auth, refresh token included, and
   * the portal's new application_token; `data` names the new and the previous version.
   */
  deliverAppUpdate(
    portal: Portal,
    binding: EventBinding,
    tokens: IssuedTokens,
    previousVersion: number,
  ): Promise<SentEvent> {
    const data = {
      VERSION: String(portal.appVersion),
      PREVIOUS_VERSION: String(previousVersion),
      LANGUAGE_ID,
    };
    return this.deliver(portal, binding, 'ONAPPUPDATE', data, this.auth(portal, tokens, true));
  }

  /**
   * ONAPPPAYMENT (`on-app-payment.md`): the license as app.info tells it, and an auth block with
   * neither tokens nor application_token, so nothing in it can be verified.
   */
  deliverAppPayment(portal: Portal, binding: EventBinding): Promise<SentEvent> {
    const { settings } = portal;
    const data = {
      CODE: this.emulator.options.clientId,
      VERSION: String(portal.appVersion),
      STATUS: settings.appStatus,
      PAYMENT_EXPIRED: settings.paymentExpired ? 'Y' : 'N',
      DAYS: settings.days === null ? '' : String(settings.days),
      LANGUAGE_ID,
    };
    const auth = {
      domain: portal.domain,
      server_endpoint: this.emulator.serverEndpoint,
      client_endpoint: this.emulator.clientEndpoint(portal),
      member_id: portal.memberId,
    };
    return this.deliver(portal, binding, 'ONAPPPAYMENT', data, auth);
  }

  /** ONAPPUNINSTALL is `sendAuth=false`: no tokens, application_token is the only proof. */
  deliverAppUninstall(portal: Portal, binding: EventBinding, clean: boolean): Promise<SentEvent> {
    const auth = {
      domain: portal.domain,
      server_endpoint: this.emulator.serverEndpoint,
      client_endpoint: this.emulator.clientEndpoint(portal),
      member_id: portal.memberId,
      application_token: portal.applicationToken,
    };
    const data = { LANGUAGE_ID, CLEAN: clean ? '1' : '0' };
    return this.deliver(portal, binding, 'ONAPPUNINSTALL', data, auth);
  }

  /**
   * A robot's POST to its HANDLER (contract §11): its fields as given, `ts`, and the auth of the
   * robot's AUTH_USER_ID (none for 0) with the application_token; no refresh token.
   */
  async deliverRobotRun(
    portal: Portal,
    handler: string,
    fields: Record<string, unknown>,
    authUserId: number,
  ): Promise<SentEvent> {
    const body = encodeEventForm({
      ...fields,
      ts: String(Math.floor(this.emulator.clock.now() / 1000)),
      auth: this.auth(portal, this.eventTokens(portal, authUserId), false),
    });
    return this.post(portal, handler, `ROBOT:${String(fields.code)}`, body);
  }

  private async deliver(
    portal: Portal,
    binding: EventBinding,
    event: string,
    data: unknown,
    auth: Record<string, string>,
  ): Promise<SentEvent> {
    const body = encodeEventForm({
      event,
      event_handler_id: String(binding.id),
      data: isEmptyData(data) ? undefined : data,
      ts: String(Math.floor(this.emulator.clock.now() / 1000)),
      auth,
    });
    return this.post(portal, binding.handler, event, body);
  }

  private async post(portal: Portal, url: string, event: string, body: string): Promise<SentEvent> {
    const sent: SentEvent = {
      url,
      event,
      body,
      contentType: FORM_CONTENT_TYPE,
      sentAt: new Date(this.emulator.clock.now()).toISOString(),
      status: null,
      responseBody: '',
    };
    portal.recordSent(sent);
    const outcome = await this.emulator.sender.post(url, body);
    sent.status = outcome.status;
    sent.responseBody = outcome.body;
    if (outcome.error !== undefined) sent.error = outcome.error;
    try {
      this.emulator.options.onEventSent?.(portal.memberId, sent);
    } catch (error) {
      // A faulty observer must not take down the delivery that nobody awaits.
      console.error('Bitrix24 emulator: onEventSent failed', error);
    }
    return sent;
  }

  /** The `auth[...]` block; tokens are left out when no user is attached (agents, robots). */
  private auth(
    portal: Portal,
    tokens: IssuedTokens | undefined,
    withRefreshToken: boolean,
  ): Record<string, string> {
    const block: Record<string, string> = {};
    if (tokens !== undefined) {
      block.access_token = tokens.accessToken;
      block.expires = String(Math.floor(tokens.expiresAtMs / 1000));
      block.expires_in = String(this.emulator.tokens.accessLifetimeSeconds);
    }
    block.scope = this.emulator.options.scope;
    block.domain = portal.domain;
    block.server_endpoint = this.emulator.serverEndpoint;
    block.status = portal.settings.appStatus;
    block.client_endpoint = this.emulator.clientEndpoint(portal);
    block.member_id = portal.memberId;
    if (tokens !== undefined) {
      block.user_id = String(tokens.grant.userId);
      if (withRefreshToken) block.refresh_token = tokens.refreshToken;
    }
    block.application_token = portal.applicationToken;
    return block;
  }

  /** Each event carries a fresh token chain for its user, independent of the app's stored one. */
  private eventTokens(portal: Portal, userId: number): IssuedTokens | undefined {
    if (userId <= 0) return undefined;
    return this.emulator.tokens.issue({
      memberId: portal.memberId,
      userId,
      installation: portal.installation,
      scope: this.emulator.options.scope,
    });
  }
}

/**
 * PHP `http_build_query`, which the real sender uses: bracket keys percent-encoded, spaces as `+`,
 * booleans as 1/0, nulls left out.
 */
function encodeEventForm(fields: Record<string, unknown>): string {
  return qs.stringify(fields, {
    format: 'RFC1738',
    skipNulls: true,
    filter: (_prefix, value: unknown) => (typeof value === 'boolean' ? (value ? '1' : '0') : value),
  });
}

/** The real sender leaves `data` out when it is empty (ONOFFLINEEVENT's `[]`). */
function isEmptyData(data: unknown): boolean {
  if (data === null || data === undefined) return true;
  if (Array.isArray(data)) return data.length === 0;
  return typeof data === 'object' && Object.keys(data).length === 0;
}
