import type { Clock } from './clock';
import type { CreatePortalRequest } from './control-contract';
import { EventDispatcher } from './events/event-dispatcher';
import { EventSender } from './events/event-sender';
import { TokenRegistry } from './oauth/token-registry';
import { Portal, type SentEvent } from './portals/portal';
import { PortalRegistry } from './portals/portal-registry';
import { randomLowercaseAlphanumerics, randomMd5Shaped } from './random-identifiers';
import type { RateLimit } from './rest/leaky-bucket';

/** Options with every default filled in. */
export interface EmulatorSettings {
  readonly clientId: string;
  readonly clientSecret: string;
  /** Overrides the plan limits for every portal when set. */
  readonly rateLimit?: RateLimit;
  readonly accessTokenLifetimeSeconds: number;
  readonly refreshTokenLifetimeSeconds: number;
  readonly senderTimeoutMs: number;
  /** The app's scopes, comma-separated as Bitrix sends them. */
  readonly scope: string;
  readonly clock: Clock;
  readonly onEventSent?: (memberId: string, sent: SentEvent) => void;
}

/** The parts of one running emulator that its HTTP routes share. */
export class Emulator {
  readonly tokens: TokenRegistry;
  readonly portals = new PortalRegistry();
  readonly sender: EventSender;
  readonly events: EventDispatcher;
  /** Known once the server listens (the port may be ephemeral). */
  url = '';

  constructor(readonly options: EmulatorSettings) {
    this.tokens = new TokenRegistry(options.clock, {
      accessSeconds: options.accessTokenLifetimeSeconds,
      refreshSeconds: options.refreshTokenLifetimeSeconds,
    });
    this.sender = new EventSender(options.senderTimeoutMs);
    this.events = new EventDispatcher(this);
  }

  get clock(): Clock {
    return this.options.clock;
  }

  /** The OAuth server's `server_endpoint`. */
  get serverEndpoint(): string {
    return `${this.url}/rest/`;
  }

  /** The token endpoint's `domain` names the OAuth server itself, as oauth.bitrix.info does. */
  get oauthDomain(): string {
    return new URL(this.url).hostname;
  }

  clientEndpoint(portal: Portal): string {
    return `${portal.origin ?? this.url}/${portal.domain}/rest/`;
  }

  /** Creates a portal; undefined when its member_id or domain is taken. */
  createPortal(request: CreatePortalRequest): Portal | undefined {
    const memberId = request.memberId ?? randomMd5Shaped();
    const domain = (
      request.domain ?? `${randomLowercaseAlphanumerics(10)}.bitrix24.test`
    ).toLowerCase();
    if (this.portals.isTaken(memberId, domain)) return undefined;
    const plan = request.plan ?? 'standard';
    const portal = new Portal(
      memberId,
      domain,
      randomMd5Shaped(),
      {
        plan,
        appStatus: request.appStatus ?? 'F',
        paymentAllowed: request.paymentAllowed ?? true,
        paymentExpired: request.paymentExpired ?? false,
        days: request.days ?? null,
        features: {
          rest_offline_extended: request.features?.rest_offline_extended ?? true,
          rest_auth_connector: request.features?.rest_auth_connector ?? plan === 'enterprise',
        },
        loopRule: true,
      },
      this.clock,
      this.options.rateLimit,
    );
    this.portals.add(portal);
    return portal;
  }

  close(): void {
    this.sender.close();
  }

  /**
   * Opens another origin of this emulator (one more loopback port, the same routes), so a portal
   * that moves its domain moves to another host. Set by startEmulator once the server listens.
   */
  openOrigin: () => Promise<string> = () =>
    Promise.reject(new Error('The emulator is not listening yet'));

  /**
   * Moves a portal to `domain` at a new origin of its own: its old REST address answers 302 with
   * the new one in `Location`, OAuth answers and events name the new `client_endpoint`. With
   * `loop`, the move is not applied: the old address redirects to the new one and the new one back.
   * Returns the new address's client_endpoint.
   */
  async moveDomain(portal: Portal, domain: string, loop: boolean): Promise<string> {
    const origin = await this.openOrigin();
    const newEndpoint = `${origin}/${domain}/rest/`;
    if (loop) {
      this.portals.loop(portal, domain, newEndpoint);
    } else {
      this.portals.move(portal, domain, origin);
    }
    return newEndpoint;
  }
}
