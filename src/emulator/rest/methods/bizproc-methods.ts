import { assertValidHandlerUrl } from '../../events/handler-url';
import type { RegisteredRobot } from '../../portals/portal-robots';
import { phpIntval, phpString, phpTruthy } from '../php-values';
import { restErrors, RestError } from '../rest-error';
import {
  requireAdmin,
  type Caller,
  type MethodCall,
  type MethodOutcome,
  type RestMethod,
} from '../rest-method';

/**
 * bizproc.robot.add / update / delete / list and bizproc.event.send, as
 * `api-reference/bizproc/bizproc-robot/*.md` describes them (see docs/bitrix24/robots.md).
 */
export const bizprocMethods: Readonly<Record<string, RestMethod>> = {
  'bizproc.robot.add': { scope: 'bizproc', run: addRobot },
  'bizproc.robot.update': { scope: 'bizproc', run: updateRobot },
  'bizproc.robot.delete': { scope: 'bizproc', run: deleteRobot },
  'bizproc.robot.list': { scope: 'bizproc', run: listRobots },
  'bizproc.event.send': { scope: 'bizproc', run: sendEvent },
};

const validationFailure = (description: string) =>
  new RestError('ERROR_ACTIVITY_VALIDATION_FAILURE', description, 400);
const robotNotFound = () =>
  new RestError('ERROR_ACTIVITY_NOT_FOUND', 'Activity or Robot not found!', 400);

const ROBOT_CODE = /^[a-z0-9.\-_]+$/i;
const PROPERTY_KEY = /^[a-z][a-z0-9_]*$/i;

/** The robot methods work only in an app's context, by an administrator (bizproc-robot-*.md). */
function requireAdminApp(caller: Caller): void {
  if (caller.app === null)
    throw new RestError('ACCESS_DENIED', 'Application context required', 403);
  requireAdmin(caller);
}

function robotCode(value: unknown): string {
  const code = phpString(value);
  if (code === '') throw validationFailure('Empty activity code!');
  if (!ROBOT_CODE.test(code)) throw validationFailure('Wrong activity code!');
  return code;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Upper-cases a property's own keys (Name → NAME), keeps the keys of its Options as given. */
function normalizedProperty(property: unknown): Record<string, unknown> {
  if (!isRecord(property)) return {};
  return Object.fromEntries(Object.entries(property).map(([key, v]) => [key.toUpperCase(), v]));
}

/** PROPERTIES / RETURN_PROPERTIES: keys `^[a-z][a-z0-9_]*$`, each property with a NAME. */
function robotProperties(value: unknown): Record<string, unknown> {
  if (value === undefined || value === null || value === '') return {};
  if (!isRecord(value)) throw validationFailure('Wrong properties array!');
  const properties: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(value)) {
    if (!PROPERTY_KEY.test(key)) throw validationFailure(`Wrong property key ${key}!`);
    const property = normalizedProperty(raw);
    if (!phpTruthy(property.NAME)) throw validationFailure(`Empty property NAME ${key}!`);
    properties[key] = property;
  }
  return properties;
}

function handlerUrl(value: unknown): string {
  const handler = phpString(value);
  assertValidHandlerUrl(handler);
  return handler;
}

function fieldsOf(raw: unknown): Record<string, unknown> {
  if (!isRecord(raw)) return {};
  return Object.fromEntries(Object.entries(raw).map(([key, value]) => [key.toUpperCase(), value]));
}

function addRobot(call: MethodCall): MethodOutcome {
  requireAdminApp(call.caller);
  const { params } = call;
  const code = robotCode(params.get('CODE'));
  const handler = handlerUrl(params.get('HANDLER'));
  if (!phpTruthy(params.get('NAME'))) throw validationFailure('Empty activity NAME!');
  const robot: RegisteredRobot = {
    code,
    handler,
    authUserId: phpIntval(params.get('AUTH_USER_ID')),
    useSubscription: phpString(params.get('USE_SUBSCRIPTION')),
    name: params.get('NAME'),
    description: params.get('DESCRIPTION') ?? '',
    properties: robotProperties(params.get('PROPERTIES')),
    returnProperties: robotProperties(params.get('RETURN_PROPERTIES')),
    documentType: params.get('DOCUMENT_TYPE') ?? null,
    filter: params.get('FILTER') ?? null,
    usePlacement: phpString(params.get('USE_PLACEMENT')),
    addedAtMs: call.emulator.clock.now(),
  };
  if (!call.portal.robots.add(robot)) {
    throw new RestError(
      'ERROR_ACTIVITY_ALREADY_INSTALLED',
      'Activity or Robot already installed!',
      400,
    );
  }
  return { result: true };
}

function updateRobot(call: MethodCall): MethodOutcome {
  requireAdminApp(call.caller);
  const code = robotCode(call.params.get('CODE'));
  const robot = call.portal.robots.get(code);
  if (robot === undefined) throw robotNotFound();
  const fields = fieldsOf(call.params.get('FIELDS'));
  if (Object.keys(fields).length === 0) throw validationFailure('No fields to update');
  // Everything is checked before anything changes: a refused update leaves the robot as it was.
  const handler = 'HANDLER' in fields ? handlerUrl(fields.HANDLER) : robot.handler;
  if ('NAME' in fields && !phpTruthy(fields.NAME)) throw validationFailure('Empty activity NAME!');
  const properties = 'PROPERTIES' in fields ? robotProperties(fields.PROPERTIES) : robot.properties;
  const returnProperties =
    'RETURN_PROPERTIES' in fields
      ? robotProperties(fields.RETURN_PROPERTIES)
      : robot.returnProperties;
  robot.handler = handler;
  robot.properties = properties;
  robot.returnProperties = returnProperties;
  if ('NAME' in fields) robot.name = fields.NAME;
  if ('DESCRIPTION' in fields) robot.description = fields.DESCRIPTION;
  if ('AUTH_USER_ID' in fields) robot.authUserId = phpIntval(fields.AUTH_USER_ID);
  if ('USE_SUBSCRIPTION' in fields) robot.useSubscription = phpString(fields.USE_SUBSCRIPTION);
  if ('DOCUMENT_TYPE' in fields) robot.documentType = fields.DOCUMENT_TYPE;
  if ('FILTER' in fields) robot.filter = fields.FILTER;
  if ('USE_PLACEMENT' in fields) robot.usePlacement = phpString(fields.USE_PLACEMENT);
  return { result: true };
}

function deleteRobot(call: MethodCall): MethodOutcome {
  requireAdminApp(call.caller);
  const code = robotCode(call.params.get('CODE'));
  if (!call.portal.robots.delete(code)) throw robotNotFound();
  return { result: true };
}

/** The codes of the app's robots, nothing more (`bizproc-robot-list.md`). */
function listRobots(call: MethodCall): MethodOutcome {
  requireAdminApp(call.caller);
  return { result: call.portal.robots.codes() };
}

/**
 * The answer of a waiting robot, once per event_token. A token the portal did not hand out, one
 * of a robot that does not wait, one already answered, or one whose wait ran out is refused as
 * an unverifiable token is: ACCESS_DENIED (see docs/bitrix24/robots.md).
 */
function sendEvent(call: MethodCall): MethodOutcome {
  const token = call.params.string('EVENT_TOKEN');
  const { robots } = call.portal;
  const run = token === '' ? undefined : robots.run(token);
  const now = call.emulator.clock.now();
  if (
    run === undefined ||
    !run.waits ||
    robots.answered(token) ||
    (run.deadlineMs !== null && now > run.deadlineMs)
  ) {
    throw restErrors.accessDenied();
  }
  robots.recordAnswer({
    eventToken: token,
    code: run.code,
    documentId: run.documentId,
    returnValues: call.params.get('RETURN_VALUES') ?? {},
    logMessage: call.params.string('LOG_MESSAGE'),
    answeredAt: new Date(now).toISOString(),
  });
  return { result: true };
}
