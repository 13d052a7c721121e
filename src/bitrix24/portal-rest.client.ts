import { InvalidInputError } from '../errors/domain-error';
import { chunkCommands, commandTimes, mergeBatchAnswers, RawBatchAnswer } from './batch-commands';
import { Bitrix24ApiError } from './bitrix24-api.error';
import type {
  AppInfo,
  BatchCommand,
  BatchResult,
  BoundHandler,
  OfflineGetResult,
  OfflineListRow,
  RestResponse,
  RestTime,
} from './bitrix24.types';
import type { OperatingTimeTracker } from './operating-time.tracker';
import type { RestCallExecutor, RestCallOptions } from './rest-call.executor';

/** Method names go into the URL path: nothing but Bitrix24's own alphabet. */
const METHOD_NAME = /^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$/;
const OFFLINE_METHOD_PREFIX = 'event.offline.';

/**
 * The order pages are asked in: Bitrix24's default `TIMESTAMP_X` has one-second precision and no
 * tie-break (contract §1), so an ADD and an UPDATE of one second could come UPDATE first; the ID
 * (insertion order) settles ties. A merged row keeps its ID and moves with its new TIMESTAMP_X.
 */
export const OFFLINE_PAGE_ORDER = { TIMESTAMP_X: 'ASC', ID: 'ASC' } as const;

export type EventType = 'online' | 'offline';

/**
 * event.offline.get takes rows as it answers: it reserves a new batch (clear=0) or deletes what it
 * returns (clear=1, Bitrix24's default), so after a lost answer a repeat gets other rows and the
 * first ones stay reserved or are gone. Re-reading a reserved batch (process_id with clear=0)
 * changes nothing and may be repeated.
 */
function takesOfflineRows(method: string, params: Readonly<Record<string, unknown>>): boolean {
  if (method !== 'event.offline.get') return false;
  const rereadsBatch =
    typeof params.process_id === 'string' &&
    params.process_id !== '' &&
    (params.clear === 0 || params.clear === '0' || params.clear === false);
  return !rereadsBatch;
}

/**
 * REST calls to one portal (see RestCallExecutor for what happens around each request). With
 * BITRIX24_AUTH_CONNECTOR set, every offline-queue call and offline bind carries it, so our own
 * writes through the API do not come back as offline events (contract §10).
 */
export class PortalRestClient {
  constructor(
    readonly memberId: string,
    private readonly executor: RestCallExecutor,
    private readonly operatingTime: OperatingTimeTracker,
    private readonly authConnector: string | undefined,
  ) {}

  /** A call that takes offline rows is not repeated after a failure it may have run through. */
  async call<T>(
    method: string,
    params: Record<string, unknown> = {},
    options: RestCallOptions = {},
  ): Promise<RestResponse<T>> {
    if (!METHOD_NAME.test(method)) {
      throw new InvalidInputError(
        'invalid_bitrix24_method',
        `Not a Bitrix24 method name: ${method}`,
      );
    }
    const offlineQueue = method.startsWith(OFFLINE_METHOD_PREFIX);
    const response = await this.executor.execute(
      this.memberId,
      method,
      this.withConnector(offlineQueue, params),
      {
        repeatable: options.repeatable ?? !takesOfflineRows(method, params),
        offlineQueue: options.offlineQueue ?? offlineQueue,
        ...(options.expectedRunMs !== undefined ? { expectedRunMs: options.expectedRunMs } : {}),
      },
    );
    return response as RestResponse<T>;
  }

  /**
   * Runs the commands in `batch` requests of at most 50 (one rate-limit unit each). Per-command
   * failures come back in `errors`, keyed like the commands; with `halt`, Bitrix24 stops at the
   * first failing command and so do we (no further chunks are sent). `expectedRunMs`: how long
   * the commands are expected to run (see RestCallOptions).
   */
  async batch(
    commands: Record<string, BatchCommand>,
    options: { halt?: boolean; expectedRunMs?: number } = {},
  ): Promise<BatchResult> {
    for (const command of Object.values(commands)) {
      if (!METHOD_NAME.test(command.method) || command.method === 'batch') {
        throw new InvalidInputError(
          'invalid_bitrix24_method',
          `Not a method a batch can run: ${command.method}`,
        );
      }
    }
    // auth_connector is an auth-level parameter: it belongs to the HTTP request, so the batch
    // carries it for all its commands when any of them works on the offline queue.
    const offline = Object.values(commands).some(
      (command) =>
        command.method.startsWith(OFFLINE_METHOD_PREFIX) ||
        (command.method.startsWith('event.') && command.params?.event_type === 'offline'),
    );
    const offlineQueue = Object.values(commands).every((command) =>
      command.method.startsWith(OFFLINE_METHOD_PREFIX),
    );
    const repeatable = !Object.values(commands).some((command) =>
      takesOfflineRows(command.method, command.params ?? {}),
    );
    const answers: { answer: RawBatchAnswer; time?: RestTime }[] = [];
    for (const cmd of chunkCommands(commands)) {
      const response = await this.call<RawBatchAnswer>(
        'batch',
        this.withConnector(offline, { cmd, halt: options.halt ? 1 : 0 }),
        {
          repeatable,
          offlineQueue,
          ...(options.expectedRunMs !== undefined ? { expectedRunMs: options.expectedRunMs } : {}),
        },
      );
      const answer = response.result ?? {};
      answers.push({ answer, time: response.time });
      for (const [key, time] of Object.entries(commandTimes(answer))) {
        const method = commands[key]?.method;
        if (method) this.operatingTime.record(this.memberId, method, time);
      }
      const failed = Array.isArray(answer.result_error)
        ? answer.result_error.length > 0
        : Object.keys(answer.result_error ?? {}).length > 0;
      if (options.halt && failed) break;
    }
    return mergeBatchAnswers(answers);
  }

  /** Binds a handler; a handler Bitrix24 already has is not an error ("Handler already binded"). */
  async eventBind(binding: {
    event: string;
    handler?: string;
    eventType?: EventType;
    options?: Record<string, unknown>;
  }): Promise<'bound' | 'already_bound'> {
    const offline = binding.eventType === 'offline';
    try {
      await this.call<boolean>(
        'event.bind',
        this.withConnector(offline, {
          event: binding.event,
          ...(binding.handler !== undefined ? { handler: binding.handler } : {}),
          ...(binding.eventType !== undefined ? { event_type: binding.eventType } : {}),
          ...(binding.options !== undefined ? { options: binding.options } : {}),
        }),
      );
      return 'bound';
    } catch (error) {
      if (
        error instanceof Bitrix24ApiError &&
        error.bitrixCode === 'ERROR_CORE' &&
        /already binded/i.test(error.description)
      ) {
        return 'already_bound';
      }
      throw error;
    }
  }

  /** Unbinds matching handlers; returns how many went (0 is not an error). */
  async eventUnbind(binding: {
    event: string;
    handler?: string;
    eventType?: EventType;
  }): Promise<number> {
    const response = await this.call<{ count: number }>(
      'event.unbind',
      this.withConnector(binding.eventType === 'offline', {
        event: binding.event,
        ...(binding.handler !== undefined ? { handler: binding.handler } : {}),
        ...(binding.eventType !== undefined ? { event_type: binding.eventType } : {}),
      }),
    );
    return Number(response.result?.count ?? 0);
  }

  async eventGet(): Promise<BoundHandler[]> {
    const response = await this.call<BoundHandler[]>('event.get');
    return Array.isArray(response.result) ? response.result : [];
  }

  /**
   * `clear: false` reserves the rows under a process_id until they are cleared (needs the
   * rest_offline_extended feature, else WRONG_LICENSE); `processId` fetches a reserved batch again.
   * `time` is the answer's time block (its run time and operating time).
   */
  async offlineGet(options: {
    limit: number;
    clear: boolean;
    processId?: string;
    error?: boolean;
    expectedRunMs?: number;
  }): Promise<OfflineGetResult & { time?: RestTime }> {
    const response = await this.call<OfflineGetResult>(
      'event.offline.get',
      {
        order: OFFLINE_PAGE_ORDER,
        limit: options.limit,
        clear: options.clear ? 1 : 0,
        ...(options.processId !== undefined ? { process_id: options.processId } : {}),
        ...(options.error !== undefined ? { error: options.error ? 1 : 0 } : {}),
      },
      options.expectedRunMs !== undefined ? { expectedRunMs: options.expectedRunMs } : {},
    );
    const result = response.result;
    return {
      process_id: result?.process_id ?? null,
      events: Array.isArray(result?.events) ? result.events : [],
      ...(response.time !== undefined ? { time: response.time } : {}),
    };
  }

  /** Clears a batch, or only some of its rows (`messageIds` win over `ids`, as in Bitrix24). */
  async offlineClear(options: {
    processId: string;
    ids?: number[];
    messageIds?: string[];
  }): Promise<void> {
    await this.call<boolean>('event.offline.clear', {
      process_id: options.processId,
      ...(options.ids !== undefined ? { id: options.ids } : {}),
      ...(options.messageIds !== undefined ? { message_id: options.messageIds } : {}),
    });
  }

  /** Releases rows of a batch as failed (ERROR=1); they come back with `offlineGet({error: true})`. */
  async offlineError(options: { processId: string; messageIds: string[] }): Promise<void> {
    await this.call<boolean>('event.offline.error', {
      process_id: options.processId,
      message_id: options.messageIds,
    });
  }

  /** Read-only view of the queue, reserved rows included; pages of 50 (`start` is an offset). */
  async offlineList(
    options: {
      filter?: Record<string, unknown>;
      order?: Record<string, 'ASC' | 'DESC'>;
      start?: number;
    } = {},
  ): Promise<{ rows: OfflineListRow[]; total: number; next?: number }> {
    const response = await this.call<OfflineListRow[]>('event.offline.list', {
      ...(options.filter !== undefined ? { filter: options.filter } : {}),
      ...(options.order !== undefined ? { order: options.order } : {}),
      ...(options.start !== undefined ? { start: options.start } : {}),
    });
    const rows = Array.isArray(response.result) ? response.result : [];
    return {
      rows,
      total: response.total ?? rows.length,
      ...(response.next !== undefined ? { next: response.next } : {}),
    };
  }

  async appInfo(): Promise<AppInfo> {
    return (await this.call<AppInfo>('app.info')).result;
  }

  /** feature.get: whether the portal's plan has the feature (rest_offline_extended, …). */
  async featureGet(code: string): Promise<boolean> {
    const response = await this.call<{ value?: string }>('feature.get', { CODE: code });
    return response.result?.value === 'Y';
  }

  private withConnector(
    offline: boolean,
    params: Record<string, unknown>,
  ): Record<string, unknown> {
    return offline && this.authConnector !== undefined && params.auth_connector === undefined
      ? { ...params, auth_connector: this.authConnector }
      : params;
  }
}
