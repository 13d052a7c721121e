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
}
