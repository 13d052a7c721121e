/**
 * What vendor handler code imports: the event a handler receives, the decorator that registers it,
 * and the client it calls its portal with.
 */
export { OnBitrix24Event } from './inbox/on-bitrix24-event.decorator';
export type { InboxEvent } from './inbox/inbox-event';
export {
  Bitrix24Robot,
  type RobotAnswer,
  type RobotDeclaration,
  type RobotProperty,
  type RobotPropertyType,
  type RobotRun,
} from './robots/bitrix24-robot.decorator';
export { Bitrix24Client } from './bitrix24/bitrix24.client';
export {
  Bitrix24OutcomeUnknownError,
  Bitrix24PortalClient,
  methodKind,
  type ListAllOptions,
  type MethodKind,
} from './bitrix24/portal-client';
export { Bitrix24ApiError, Bitrix24UserNotAuthorizedError } from './bitrix24/bitrix24-api.error';
export type { BatchCommand, BatchResult, RestResponse } from './bitrix24/bitrix24.types';
export type { LicenseState, PortalLicense } from './portals/portal-license';
