import { findBindableEvent } from '../../events/event-catalog';
import { assertValidHandlerUrl } from '../../events/handler-url';
import type { MethodParams } from '../method-params';
import { phpIntval } from '../php-values';
import { restErrors } from '../rest-error';
import {
  requireAppContext,
  type MethodCall,
  type MethodOutcome,
  type RestMethod,
} from '../rest-method';

/** event.bind / event.unbind / event.get as contract §3 describes them. */
export const eventMethods: Readonly<Record<string, RestMethod>> = {
  'event.bind': { scope: null, run: bindEvent },
  'event.unbind': { scope: null, run: unbindEvent },
  'event.get': { scope: null, run: listBindings },
};

function bindEvent(call: MethodCall): MethodOutcome {
  const app = requireAppContext(call.caller);
  const { caller, params, portal } = call;
  const eventName = params.string('EVENT').toUpperCase();
  let userId = params.int('AUTH_TYPE');
  let handler = params.string('HANDLER');
  if (userId > 0) {
    if (!caller.isAdmin && userId !== caller.userId) {
      throw restErrors.accessDenied(
        'Event binding with AUTH_TYPE requires administrator access rights',
      );
    }
  } else if (!caller.isAdmin) {
    userId = caller.userId;
  }
  if (eventName === '') throw restErrors.argumentNull('EVENT');
  const offline = readEventType(params) === 'offline';
  if (offline) {
    if (!caller.isAdmin) {
      throw restErrors.accessDenied('Offline events binding requires administrator access rights');
    }
    handler = '';
    userId = 0;
  } else if (handler === '') {
    throw restErrors.argumentNull('HANDLER');
  }
  if (handler !== '') assertValidHandlerUrl(handler);
  const definition = findBindableEvent(eventName, app.scopes);
  if (definition === undefined) throw restErrors.eventNotFound();
  if (offline && !definition.offlineAllowed) {
    throw restErrors.argument('Offline event cannot be registered for this event.');
  }
  const options = readOptions(params.get('OPTIONS'), definition.acceptsMinTimeout);
  const added = portal.bindings.add({
    event: eventName,
    handler,
    userId,
    connectorId: app.authConnector,
    offline,
    options,
  });
  if (added === undefined)
    throw restErrors.core('Unable to set event handler: Handler already binded');
  return { result: true };
}

function unbindEvent(call: MethodCall): MethodOutcome {
  const app = requireAppContext(call.caller);
  const { caller, params, portal } = call;
  const eventName = params.string('EVENT').toUpperCase();
  let handler = params.string('HANDLER');
  if (eventName === '') throw restErrors.argumentNull('EVENT');
  const offline = readEventType(params) === 'offline';
  let userFilter: number | undefined;
  if (offline) {
    if (!caller.isAdmin) {
      throw restErrors.accessDenied(
        'Offline events unbinding requires administrator access rights',
      );
    }
    handler = '';
  } else {
    if (handler === '') throw restErrors.argumentNull('HANDLER');
    if (params.has('AUTH_TYPE')) {
      userFilter = params.int('AUTH_TYPE');
      if (!caller.isAdmin && userFilter !== caller.userId) {
        throw restErrors.accessDenied(
          'Event unbinding with AUTH_TYPE requires administrator access rights',
        );
      }
    } else if (!caller.isAdmin) {
      userFilter = caller.userId;
    }
  }
  const count = portal.bindings.remove(
    (binding) =>
      binding.event === eventName &&
      binding.handler === handler &&
      (!offline || binding.connectorId === app.authConnector) &&
      (userFilter === undefined || binding.userId === userFilter),
  );
  return { result: { count } };
}

function listBindings(call: MethodCall): MethodOutcome {
  requireAppContext(call.caller);
  const { caller, portal } = call;
  const visible = portal.bindings
    .all()
    .filter((binding) => caller.isAdmin || binding.userId === caller.userId);
  return {
    result: visible.map((binding) =>
      binding.offline
        ? { event: binding.event, connector_id: binding.connectorId, offline: 1 }
        : {
            event: binding.event,
            handler: binding.handler,
            auth_type: String(binding.userId),
            offline: 0,
          },
    ),
  };
}

function readEventType(params: MethodParams): 'online' | 'offline' {
  const eventType = params.string('EVENT_TYPE').toLowerCase();
  if (eventType === '') return 'online';
  if (eventType !== 'online' && eventType !== 'offline') {
    throw restErrors.argument('Value must be one of {online|offline}', 'EVENT_TYPE');
  }
  return eventType;
}

/** Only events declaring `allowOptions` keep options; ONOFFLINEEVENT keeps an int minTimeout. */
function readOptions(raw: unknown, acceptsMinTimeout: boolean): { minTimeout?: number } {
  if (!acceptsMinTimeout || raw === null || typeof raw !== 'object') return {};
  const minTimeout = (raw as Record<string, unknown>).minTimeout;
  return minTimeout === undefined || minTimeout === null
    ? {}
    : { minTimeout: phpIntval(minTimeout) };
}
