import type { InboxEvent } from '../inbox/inbox-event';
import type { RobotRun } from './bitrix24-robot.decorator';
import { MalformedRobotRunError } from './robots.errors';

/** What is stored of a robot's POST: its fields without `auth` (tokens are never kept). */
export interface StoredRobotForm {
  readonly workflow_id: string;
  readonly code: string;
  readonly document_id: string[];
  readonly document_type: string[];
  readonly event_token: string;
  readonly properties: Record<string, unknown>;
  readonly use_subscription: 'Y' | 'N';
  readonly timeout_duration: number;
}

/** Robot runs are stored in the inbox under `ROBOT:<CODE>`; no Bitrix24 event name has a colon. */
export const ROBOT_EVENT_PREFIX = 'ROBOT:';

/** Robot runs are stored in the inbox under this event name. */
export function robotEventName(code: string): string {
  return `${ROBOT_EVENT_PREFIX}${code.toUpperCase()}`;
}

export function isRobotEventName(eventName: string): boolean {
  return eventName.startsWith(ROBOT_EVENT_PREFIX);
}

const TOKEN = /^[\x21-\x7e]{1,512}$/;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text(body: Record<string, unknown>, key: string, pattern?: RegExp): string {
  const value = body[key];
  if (value === undefined || value === '') throw new MalformedRobotRunError(`${key} is required`);
  if (typeof value !== 'string') throw new MalformedRobotRunError(`${key} must be a string`);
  if (pattern && !pattern.test(value)) throw new MalformedRobotRunError(`${key} is malformed`);
  return value;
}

function stringList(body: Record<string, unknown>, key: string): string[] {
  const value = body[key];
  if (value === undefined || value === '') return [];
  const items = Array.isArray(value) ? value : isRecord(value) ? Object.values(value) : undefined;
  if (items === undefined || items.some((item) => typeof item !== 'string')) {
    throw new MalformedRobotRunError(`${key} must be a list of strings`);
  }
  return items as string[];
}

/** A robot POST's fields, checked; `code` is the one of the URL (the handler we registered). */
export function parseRobotForm(body: Record<string, unknown>, code: string): StoredRobotForm {
  const sentCode = body.code;
  if (sentCode !== undefined && sentCode !== code) {
    throw new MalformedRobotRunError('code does not match the handler URL');
  }
  const properties = body.properties ?? {};
  if (properties !== '' && !isRecord(properties)) {
    throw new MalformedRobotRunError('properties must be an object');
  }
  const useSubscription = body.use_subscription;
  const timeout = body.timeout_duration;
  const timeoutText = typeof timeout === 'number' ? String(timeout) : (timeout ?? '0');
  if (typeof timeoutText !== 'string' || !/^\d{1,10}$/.test(timeoutText || '0')) {
    throw new MalformedRobotRunError('timeout_duration must be a number of seconds');
  }
  return {
    workflow_id: typeof body.workflow_id === 'string' ? body.workflow_id.slice(0, 128) : '',
    code,
    document_id: stringList(body, 'document_id'),
    document_type: stringList(body, 'document_type'),
    event_token: text(body, 'event_token', TOKEN),
    properties: isRecord(properties) ? properties : {},
    use_subscription: useSubscription === 'Y' ? 'Y' : 'N',
    timeout_duration: Number(timeoutText || '0'),
  };
}

/** The typed view a robot's handler receives, from its stored run. */
export function robotRunOf(event: InboxEvent): RobotRun {
  const form = event.data as StoredRobotForm;
  return {
    id: event.id,
    memberId: event.memberId,
    code: form.code,
    documentId: form.document_id,
    documentType: form.document_type,
    properties: form.properties,
    eventToken: form.event_token,
    workflowId: form.workflow_id,
    useSubscription: form.use_subscription === 'Y',
    timeoutDuration: form.timeout_duration,
    firedAt: event.bitrixTimestamp,
    attempt: event.attempt,
    trigger: event.trigger,
    signal: event.signal,
    portal: event.portal,
  };
}
