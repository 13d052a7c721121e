import type { Bitrix24PortalClient } from '../bitrix24/portal-client';

/** Metadata key under which a provider method carries its robot declaration. */
export const BITRIX24_ROBOT = 'bitrix24:robot';

/** Bitrix24's property types (`bizproc-robot-add.md`, PROPERTIES). */
export type RobotPropertyType =
  'string' | 'text' | 'int' | 'double' | 'bool' | 'select' | 'date' | 'datetime' | 'user';

/** A name or description: one string, or localized strings such as `{ en: '…', de: '…' }`. */
export type RobotText = string | Readonly<Record<string, string>>;

interface RobotPropertyBase {
  readonly name: RobotText;
  readonly description?: RobotText;
  readonly required?: boolean;
  readonly multiple?: boolean;
  readonly default?: unknown;
}

/** One robot property; `select` needs its options (value → title). */
export type RobotProperty =
  | (RobotPropertyBase & { readonly type: Exclude<RobotPropertyType, 'select'> })
  | (RobotPropertyBase & {
      readonly type: 'select';
      readonly options: Readonly<Record<string, string>>;
    });

export interface RobotDeclaration {
  /** Bitrix24's CODE (`a-z A-Z 0-9 . - _`): never change it once installed anywhere. */
  readonly code: string;
  readonly name: RobotText;
  readonly description?: RobotText;
  /** Keys start with a letter, then `a-z A-Z 0-9 _`. */
  readonly properties?: Readonly<Record<string, RobotProperty>>;
  /** What the answer may return (bizproc.event.send RETURN_VALUES). */
  readonly returnProperties?: Readonly<Record<string, RobotProperty>>;
  /** true: the robot waits for the answer (USE_SUBSCRIPTION=Y); false: N; unset: the user decides. */
  readonly useSubscription?: boolean;
  /** The user whose token the robot's POST carries (AUTH_USER_ID); default 1, the portal's first admin. */
  readonly authUserId?: number;
  /** e.g. `['crm', 'CCrmDocumentDeal', 'DEAL']`: the document whose field types properties use. */
  readonly documentType?: readonly [string, string, string];
  /** Where the robot is offered (FILTER{INCLUDE, EXCLUDE}). */
  readonly filter?: {
    readonly include?: readonly (string | readonly string[])[];
    readonly exclude?: readonly (string | readonly string[])[];
  };
}

/** What a robot's handler method receives: one stored run of the robot, as Bitrix24 sent it. */
export interface RobotRun {
  /** Our stored event id (stable across retries and replays). */
  readonly id: string;
  readonly memberId: string;
  readonly code: string;
  /** `[module, entity, id]`, e.g. `['crm', 'CCrmDocumentDeal', 'DEAL_12']`. */
  readonly documentId: readonly string[];
  readonly documentType: readonly string[];
  /** The property values the user set (strings and arrays, as the form carried them). */
  readonly properties: Readonly<Record<string, unknown>>;
  readonly eventToken: string;
  readonly workflowId: string;
  /** Whether Bitrix24 waits for the answer: only then is it sent. */
  readonly useSubscription: boolean;
  /** How long Bitrix24 waits, in seconds from `firedAt` (0: no limit). */
  readonly timeoutDuration: number;
  readonly firedAt: Date | null;
  readonly attempt: number;
  readonly trigger: 'automatic' | 'replay';
  readonly signal: AbortSignal;
  readonly portal: Bitrix24PortalClient;
}

/** What a handler returns: sent once with bizproc.event.send when the robot waits for it. */
export interface RobotAnswer {
  readonly returnValues?: Readonly<Record<string, unknown>>;
  readonly logMessage?: string;
}

export type RobotHandler = (run: RobotRun) => RobotAnswer | void | Promise<RobotAnswer | void>;

const ROBOT_CODE = /^[A-Za-z0-9._-]{1,100}$/;
const PROPERTY_KEY = /^[A-Za-z][A-Za-z0-9_]*$/;

function assertProperties(code: string, properties: RobotDeclaration['properties']): void {
  for (const [key, property] of Object.entries(properties ?? {})) {
    if (!PROPERTY_KEY.test(key)) {
      throw new Error(`@Bitrix24Robot ${code}: property key ${key} must start with a letter`);
    }
    if (property.type === 'select' && Object.keys(property.options).length === 0) {
      throw new Error(`@Bitrix24Robot ${code}: select property ${key} needs options`);
    }
  }
}

/**
 * Marks a provider method as the handler of a Bitrix24 robot (automation rule). The robot is
 * registered on every portal at install, on ONAPPUPDATE and on rebind; each run Bitrix24 POSTs is
 * stored once, handed to this method from the inbox (with its retries), and the method's return
 * value is sent back once with bizproc.event.send. The method must be idempotent: a retry or a
 * replay runs it again (a replay sends no second answer).
 */
export function Bitrix24Robot(declaration: RobotDeclaration): MethodDecorator {
  if (!ROBOT_CODE.test(declaration.code)) {
    throw new Error(`@Bitrix24Robot needs a code of a-z, A-Z, 0-9, '.', '-', '_'`);
  }
  assertProperties(declaration.code, declaration.properties);
  assertProperties(declaration.code, declaration.returnProperties);
  return (_target, _key, descriptor) => {
    Reflect.defineMetadata(BITRIX24_ROBOT, declaration, descriptor.value as object);
  };
}
