import type { Portal } from './portal';

/** All portals of one emulator, by member_id and by domain (REST calls arrive by domain). */
export class PortalRegistry {
  private readonly byMemberId = new Map<string, Portal>();
  private readonly byDomain = new Map<string, Portal>();

  isTaken(memberId: string, domain: string): boolean {
    return this.byMemberId.has(memberId) || this.byDomain.has(domain);
  }

  add(portal: Portal): void {
    if (this.isTaken(portal.memberId, portal.domain)) {
      throw new Error(`Portal ${portal.memberId} / ${portal.domain} already exists`);
    }
    this.byMemberId.set(portal.memberId, portal);
    this.byDomain.set(portal.domain, portal);
  }

  findByMemberId(memberId: string): Portal | undefined {
    return this.byMemberId.get(memberId);
  }

  findByDomain(domain: string): Portal | undefined {
    return this.byDomain.get(domain.toLowerCase());
  }

  all(): IterableIterator<Portal> {
    return this.byMemberId.values();
  }

  /**
   * Domains whose REST requests answer 302 (Bitrix24 `change-domen.md`): to the portal's current
   * endpoint (`to` null: a domain it moved away from) or to a fixed REST base (a loop in the making).
   */
  private readonly redirects = new Map<string, { portal: Portal; to: string | null }>();

  /** Whether `domain` is free for `portal` to move to (its own former domains are). */
  isFreeFor(portal: Portal, domain: string): boolean {
    const holder = this.byDomain.get(domain);
    return holder === undefined || (holder === portal && domain !== portal.domain);
  }

  /**
   * The portal now answers at `domain` (served at `origin`); every domain it had before redirects
   * to its new endpoint.
   */
  move(portal: Portal, domain: string, origin: string): void {
    this.forgetRedirectsOf(portal);
    this.redirects.set(portal.domain, { portal, to: null });
    for (const [former, holder] of this.byDomain) {
      if (holder === portal && former !== domain) this.redirects.set(former, { portal, to: null });
    }
    this.byDomain.set(domain, portal);
    portal.domain = domain;
    portal.origin = origin;
  }

  /**
   * A move that is not applied yet and loops: the portal's domain redirects to `newBase` (the new
   * domain's REST base) and the new domain redirects back to the portal's current endpoint.
   */
  loop(portal: Portal, domain: string, newBase: string): void {
    this.forgetRedirectsOf(portal);
    this.byDomain.set(domain, portal);
    this.redirects.set(portal.domain, { portal, to: newBase });
    this.redirects.set(domain, { portal, to: null });
  }

  /** Where a REST request to `domain` is redirected (a REST base ending in `/rest/`), if it is. */
  redirectFor(
    domain: string,
    currentEndpoint: (portal: Portal) => string,
  ): { portal: Portal; to: string } | undefined {
    const redirect = this.redirects.get(domain.toLowerCase());
    if (redirect === undefined) return undefined;
    return {
      portal: redirect.portal,
      to: redirect.to ?? currentEndpoint(redirect.portal),
    };
  }

  private forgetRedirectsOf(portal: Portal): void {
    for (const [domain, redirect] of this.redirects) {
      if (redirect.portal === portal) this.redirects.delete(domain);
    }
  }
}
