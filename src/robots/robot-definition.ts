import { createHash } from 'node:crypto';
import type { RobotDeclaration, RobotProperty } from './bitrix24-robot.decorator';

const yesNo = (value: boolean): 'Y' | 'N' => (value ? 'Y' : 'N');

/** A property as Bitrix24 takes it: Name, Description, Type, Options, Required, Multiple, Default. */
function bitrixProperty(property: RobotProperty): Record<string, unknown> {
  return {
    Name: property.name,
    ...(property.description === undefined ? {} : { Description: property.description }),
    Type: property.type,
    ...(property.type === 'select' ? { Options: property.options } : {}),
    Required: yesNo(property.required ?? false),
    Multiple: yesNo(property.multiple ?? false),
    ...(property.default === undefined ? {} : { Default: property.default }),
  };
}

function bitrixProperties(
  properties: RobotDeclaration['properties'],
): Record<string, Record<string, unknown>> {
  return Object.fromEntries(
    Object.entries(properties ?? {}).map(([key, property]) => [key, bitrixProperty(property)]),
  );
}

/** The robot's fields for bizproc.robot.add (with CODE) and bizproc.robot.update (as FIELDS). */
export function robotFields(
  declaration: RobotDeclaration,
  handler: string,
): Record<string, unknown> {
  return {
    HANDLER: handler,
    AUTH_USER_ID: declaration.authUserId ?? 1,
    NAME: declaration.name,
    ...(declaration.description === undefined ? {} : { DESCRIPTION: declaration.description }),
    ...(declaration.useSubscription === undefined
      ? {}
      : { USE_SUBSCRIPTION: yesNo(declaration.useSubscription) }),
    PROPERTIES: bitrixProperties(declaration.properties),
    RETURN_PROPERTIES: bitrixProperties(declaration.returnProperties),
    ...(declaration.documentType === undefined ? {} : { DOCUMENT_TYPE: declaration.documentType }),
    ...(declaration.filter === undefined
      ? {}
      : {
          FILTER: {
            ...(declaration.filter.include ? { INCLUDE: declaration.filter.include } : {}),
            ...(declaration.filter.exclude ? { EXCLUDE: declaration.filter.exclude } : {}),
          },
        }),
  };
}

/** JSON with sorted keys, so a digest does not depend on the order fields were written in. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * What was registered, as a digest: bizproc.robot.list answers only codes, so a changed robot is
 * told by comparing this with the digest stored when it was last added or updated.
 */
export function robotDigest(fields: Record<string, unknown>): string {
  return createHash('sha256').update(canonicalJson(fields)).digest('hex');
}
