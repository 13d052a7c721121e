import { InvalidInputError } from '../errors/domain-error';
import {
  BATCH_MAX_COMMANDS,
  chunkCommands,
  commandTimes,
  mergeBatchAnswers,
} from './batch-commands';
import type { RawBatchAnswer } from './batch-commands';
import { Bitrix24ApiError } from './bitrix24-api.error';
import type { BatchCommand, BatchResult, RestResponse, RestTime } from './bitrix24.types';
import type { OperatingTimeTracker } from './operating-time.tracker';
import { mayHaveRun, type RestCallExecutor } from './rest-call.executor';
import { licenseOf, type PortalLicense } from '../portals/portal-license';

/** Method names go into the URL path: nothing but Bitrix24's own alphabet. */
const METHOD_NAME = /^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$/;

/**
 * What a method does to the portal, which decides whether it may be repeated and whether it
 * carries the app's auth_connector:
 * - `read` changes nothing and is retried freely;
 * - `create` makes a new object each time it runs, so after a failure it may have run through
 *   (timeout, network error, 5xx) it is not sent again: Bitrix24OutcomeUnknownError;
 * - `write` changes an existing object to a given state (update, delete, set, bind…): running it
 *   twice ends in the same state, so it is retried like a read.
 */
export type MethodKind = 'read' | 'create' | 'write';

/** Methods whose name does not tell their kind. */
const METHOD_KINDS: Readonly<Record<string, MethodKind>> = {
  'app.info': 'read',
  'feature.get': 'read',
  profile: 'read',
  'user.current': 'read',
  'user.search': 'read',
  scope: 'read',
  methods: 'read',
  'server.time': 'read',
  'crm.duplicate.findbycomm': 'read',
  'bizproc.workflow.start': 'create',
  'im.notify': 'create',
  'im.notify.personal.add': 'create',
  'im.notify.system.add': 'create',
  'tasks.task.copy': 'create',
};

/** Last name segments of reading methods: crm.deal.get, crm.deal.list, crm.deal.fields, … */
const READ_VERBS = new Set(['get', 'list', 'fields', 'getlist', 'getfields', 'search', 'count']);

export function methodKind(method: string): MethodKind {
  const name = method.toLowerCase();
  const known = METHOD_KINDS[name];
  if (known !== undefined) return known;
  const verb = name.slice(name.lastIndexOf('.') + 1);
  if (READ_VERBS.has(verb) || verb.startsWith('get') || verb.startsWith('list')) return 'read';
  if (verb === 'add' || verb === 'create' || verb === 'send' || verb === 'start') return 'create';
  return 'write';
}

/** Offline-queue methods belong to the product's drain: a handler taking rows would lose them. */
const RESERVED_PREFIX = 'event.offline.';

/**
 * A create (or a batch holding one) failed in a way it may nonetheless have run through: the
 * object may exist. It was not sent again; look it up (for instance by a field you set) before
 * creating it anew. `cause` is the failure Bitrix24 or the network gave.
 */
export class Bitrix24OutcomeUnknownError extends Error {
  constructor(
    readonly method: string,
    override readonly cause: Bitrix24ApiError,
    /** Batch commands that may have run (their keys); empty for a plain call. */
    readonly commands: readonly string[] = [],
  ) {
    super(
      `${method} may have run on Bitrix24 without an answer (${cause.bitrixCode}); not sent again`,
    );
    this.name = 'Bitrix24OutcomeUnknownError';
  }
}

export interface ListAllOptions {
  /**
   * `id` (default): keyset paging, `order: {ID: 'ASC'}`, `filter: {'>ID': last}`, `start: -1`: no
   * count query and constant time per page. `offset` follows `next` for a method that cannot
   * filter by ID; it counts the list on every page.
   */
  readonly paging?: 'id' | 'offset';
  /** The ID field's name in rows and filter: `ID` for crm.deal.list, `id` for crm.item.list. */
  readonly idField?: string;
}

/** Rows of a list answer: an array, or one array inside an object (`{items: [...]}`). */
function rowsOf(result: unknown): Record<string, unknown>[] {
  if (Array.isArray(result)) return result as Record<string, unknown>[];
  if (result !== null && typeof result === 'object') {
    const arrays = Object.values(result).filter(Array.isArray);
    if (arrays.length === 1) return arrays[0] as Record<string, unknown>[];
  }
  return [];
}

function assertMethod(method: string): void {
  if (!METHOD_NAME.test(method)) {
    throw new InvalidInputError('invalid_bitrix24_method', `Not a Bitrix24 method name: ${method}`);
  }
  if (method.toLowerCase().startsWith(RESERVED_PREFIX)) {
    throw new InvalidInputError(
      'reserved_bitrix24_method',
      `${method} is reserved for the offline-queue drain; handlers receive the events instead`,
    );
  }
}

/**
 * The client a handler gets for its portal. Each request waits for room in the portal's leaky
 * bucket (shared by every replica and caller), uses the stored token chain (refreshed once on
 * expired_token), backs off and retries QUERY_LIMIT_EXCEEDED, OPERATION_TIME_LIMIT, 5xx and network
 * errors, and stops at a portal-gone answer (the portal's status changes). Errors that remain are
 * Bitrix24ApiError with Bitrix24's own `bitrixCode`.
 */
const UNKNOWN_LICENSE: PortalLicense = licenseOf({
  licenseStatus: null,
  licensePaymentExpired: null,
  licenseDays: null,
  licenseFamily: null,
  licenseCheckedAt: null,
});

export class Bitrix24PortalClient {
  constructor(
    readonly memberId: string,
    private readonly executor: RestCallExecutor,
    private readonly operatingTime: OperatingTimeTracker,
    private readonly authConnector: string | undefined,
    private readonly storedLicense: (memberId: string) => Promise<PortalLicense | null>,
    /** Set on a client made by asUser(): whose chain authorizes its calls. */
    readonly actor?: { readonly userId: number },
  ) {}

  /**
   * The same client, its calls made as one user of the portal with that user's own chain (stored
   * when the user opened the app): for methods whose answer depends on who asks (`user.current`,
   * task lists, a user's rights). The portal's bucket, retries and status handling apply as they
   * do to the portal's own calls. A user with no usable chain (never opened the app, or the chain
   * was refused) gets Bitrix24UserNotAuthorizedError: the user must open the app again.
   */
  asUser(userId: number): Bitrix24PortalClient {
    if (!Number.isSafeInteger(userId) || userId <= 0) {
      throw new InvalidInputError('invalid_user_id', `Not a Bitrix24 user ID: ${userId}`);
    }
    return new Bitrix24PortalClient(
      this.memberId,
      this.executor,
      this.operatingTime,
      this.authConnector,
      this.storedLicense,
      { userId },
    );
  }

  /**
   * The app's license on this portal as app.info last told it (read at install, after payments,
   * after PAYMENT_REQUIRED and daily); no request to Bitrix24. `paid` answers "is it paid for?".
   */
  async license(): Promise<PortalLicense> {
    return (await this.storedLicense(this.memberId)) ?? UNKNOWN_LICENSE;
  }

  /** One REST call; the answer as Bitrix24 sent it (`result`, `total`, `next`, `time`). */
  async call<T = unknown>(
    method: string,
    params: Record<string, unknown> = {},
  ): Promise<RestResponse<T>> {
    assertMethod(method);
    if (method.toLowerCase() === 'batch') {
      throw new InvalidInputError('invalid_bitrix24_method', 'Use batch() for batch requests');
    }
    const kind = methodKind(method);
    return (await this.send(
      method,
      this.withConnector(kind !== 'read', params),
      kind,
    )) as RestResponse<T>;
  }

  /**
   * Any number of commands, sent in `batch` requests of at most 50 (each request is one unit of the
   * portal's bucket). Results and per-command errors (`result_error`) come back keyed like the
   * commands: a failed command does not fail the others. With `halt`, Bitrix24 stops at the first
   * failing command and no further requests are sent.
   */
  async batch(
    commands: Record<string, BatchCommand> | readonly BatchCommand[],
    options: { halt?: boolean } = {},
  ): Promise<BatchResult> {
    const keyed: Record<string, BatchCommand> = Array.isArray(commands)
      ? Object.fromEntries(commands.map((command, index) => [String(index), command]))
      : (commands as Record<string, BatchCommand>);
    for (const command of Object.values(keyed)) {
      assertMethod(command.method);
      if (command.method.toLowerCase() === 'batch') {
        throw new InvalidInputError('invalid_bitrix24_method', 'A batch cannot hold a batch');
      }
    }
    const keys = Object.keys(keyed);
    const answers: { answer: RawBatchAnswer; time?: RestTime }[] = [];
    for (const [index, cmd] of chunkCommands(keyed).entries()) {
      const chunkKeys = keys.slice(index * BATCH_MAX_COMMANDS, (index + 1) * BATCH_MAX_COMMANDS);
      const kinds = chunkKeys.map((key) => methodKind(keyed[key].method));
      const kind: MethodKind = kinds.includes('create')
        ? 'create'
        : kinds.includes('write')
          ? 'write'
          : 'read';
      // auth_connector is an auth parameter of the HTTP request: it covers every command in it.
      const response = await this.send(
        'batch',
        this.withConnector(kind !== 'read', { cmd, halt: options.halt ? 1 : 0 }),
        kind,
        chunkKeys,
      );
      const answer = (response.result ?? {}) as RawBatchAnswer;
      answers.push({ answer, time: response.time });
      for (const [key, time] of Object.entries(commandTimes(answer))) {
        const method = keyed[key]?.method;
        if (method) this.operatingTime.record(this.memberId, method, time);
      }
      const failed = Array.isArray(answer.result_error)
        ? answer.result_error.length > 0
        : Object.keys(answer.result_error ?? {}).length > 0;
      if (options.halt && failed) break;
    }
    return mergeBatchAnswers(answers);
  }

  /**
   * Every row of a list method, page by page (one request per 50 rows). `params.filter` and
   * `params.select` apply; with ID paging the order is by ID ascending.
   */
  async *listAll<T extends Record<string, unknown> = Record<string, unknown>>(
    method: string,
    params: Record<string, unknown> = {},
    options: ListAllOptions = {},
  ): AsyncGenerator<T, void, undefined> {
    assertMethod(method);
    if (options.paging === 'offset') {
      let start: number | undefined = 0;
      while (start !== undefined) {
        const page: RestResponse<unknown> = await this.call(method, { ...params, start });
        const rows = rowsOf(page.result);
        for (const row of rows) yield row as T;
        start = rows.length > 0 ? page.next : undefined;
      }
      return;
    }
    const idField = options.idField ?? 'ID';
    const filter = { ...((params.filter as Record<string, unknown> | undefined) ?? {}) };
    const select: unknown = params.select;
    if (Array.isArray(select) && select.length > 0 && !select.includes('*')) {
      if (!select.includes(idField))
        params = { ...params, select: [...(select as unknown[]), idField] };
    }
    let last: unknown = filter[`>${idField}`] ?? 0;
    for (;;) {
      const page = await this.call(method, {
        ...params,
        order: { [idField]: 'ASC' },
        filter: { ...filter, [`>${idField}`]: last },
        start: -1,
      });
      const rows = rowsOf(page.result);
      for (const row of rows) yield row as T;
      if (rows.length < 50) return;
      last = rows[rows.length - 1][idField];
    }
  }

  private async send(
    method: string,
    params: Record<string, unknown>,
    kind: MethodKind,
    commands: readonly string[] = [],
  ): Promise<RestResponse<unknown>> {
    try {
      return await this.executor.execute(this.memberId, method, params, {
        repeatable: kind !== 'create',
        ...(this.actor ? { actor: this.actor } : {}),
      });
    } catch (error) {
      if (kind === 'create' && error instanceof Bitrix24ApiError && mayHaveRun(error)) {
        throw new Bitrix24OutcomeUnknownError(method, error, commands);
      }
      throw error;
    }
  }

  private withConnector(write: boolean, params: Record<string, unknown>): Record<string, unknown> {
    return write && this.authConnector !== undefined && params.auth_connector === undefined
      ? { ...params, auth_connector: this.authConnector }
      : params;
  }
}
