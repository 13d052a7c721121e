import { DomainError } from '../errors/domain-error';
import type { PortalStatus } from './portal-status';

export enum PortalStatusErrorCode {
  PortalNotFound = 'portal_not_found',
  TransitionNotAllowed = 'portal_status_transition_not_allowed',
}

export class PortalNotFoundError extends DomainError {
  readonly kind = 'not_found';

  constructor(readonly memberId: string) {
    super(PortalStatusErrorCode.PortalNotFound, `Portal ${memberId} does not exist`);
  }
}

export class PortalStatusTransitionError extends DomainError {
  readonly kind = 'conflict';

  constructor(
    readonly memberId: string,
    readonly from: PortalStatus,
    readonly to: PortalStatus,
  ) {
    super(
      PortalStatusErrorCode.TransitionNotAllowed,
      `Portal ${memberId} cannot go from ${from} to ${to}`,
    );
  }
}
