import { restErrors, RestError } from '../rest-error';
import {
  requireAdmin,
  requireAppContext,
  type MethodCall,
  type MethodOutcome,
  type RestMethod,
} from '../rest-method';

/** placement.bind / placement.get / placement.unbind: administrators only, per installation. */
export const placementMethods: Readonly<Record<string, RestMethod>> = {
  'placement.bind': { scope: null, run: bindPlacement },
  'placement.get': { scope: null, run: listPlacements },
  'placement.unbind': { scope: null, run: unbindPlacement },
};

function bindPlacement(call: MethodCall): MethodOutcome {
  requireAppContext(call.caller);
  requireAdmin(call.caller);
  const placement = call.params.string('PLACEMENT').toUpperCase();
  const handler = call.params.string('HANDLER');
  if (placement === '') throw new RestError('ERROR_PLACEMENT_EMPTY', 'Placement is empty', 400);
  if (handler === '') throw new RestError('ERROR_HANDLER_EMPTY', 'Handler is empty', 400);
  const added = call.portal.placements.bind({
    placement,
    handler,
    title: call.params.string('TITLE'),
    description: call.params.string('DESCRIPTION'),
  });
  if (!added) {
    throw new RestError('ERROR_PLACEMENT_HANDLER_ALREADY_BINDED', 'Handler already binded', 400);
  }
  return { result: true };
}

function listPlacements(call: MethodCall): MethodOutcome {
  requireAppContext(call.caller);
  requireAdmin(call.caller);
  return { result: call.portal.placements.list() };
}

function unbindPlacement(call: MethodCall): MethodOutcome {
  requireAppContext(call.caller);
  requireAdmin(call.caller);
  const placement = call.params.string('PLACEMENT').toUpperCase();
  if (placement === '') throw restErrors.accessDenied('PLACEMENT is required');
  const handler = call.params.string('HANDLER');
  return { result: { count: call.portal.placements.unbind(placement, handler || undefined) } };
}
