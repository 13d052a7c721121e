import type { FastifyInstance } from 'fastify';
import type {
  AuthorizationCodeRequest,
  ChangeLicenseRequest,
  OpenAppFrameRequest,
  ClockAdvanceRequest,
  CreatePortalRequest,
  EnqueueOfflineEventsRequest,
  ExpireTokensRequest,
  InstallRequest,
  PortalFaults,
  PurgeReservedRequest,
  SeedDealsRequest,
  UninstallRequest,
  UserActionRequest,
  MoveDomainRequest,
  OperatingTimeSettings,
  RunRobotRequest,
} from '../control-contract';
import type { EmulatorControl } from './emulator-control';

interface MemberIdParams {
  memberId: string;
}

interface RobotParams extends MemberIdParams {
  code: string;
}

const object = (properties: Record<string, unknown>, required: string[] = []) => ({
  type: 'object',
  additionalProperties: false,
  properties,
  required,
});

const boolean = { type: 'boolean' };
const appStatus = { type: 'string', enum: ['F', 'D', 'T', 'P', 'L', 'S'] };
const features = object({ rest_offline_extended: boolean, rest_auth_connector: boolean });
const rate = { type: 'number', minimum: 0, maximum: 1 };
const memberIdParams = object({ memberId: { type: 'string', minLength: 1 } }, ['memberId']);
const domainName = {
  type: 'string',
  maxLength: 253,
  pattern: '^[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)+$',
};

/** Input checks of the control API: unknown fields are refused, so typos do not pass silently. */
const schemas = {
  createPortal: object({
    memberId: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
    domain: { type: 'string', maxLength: 253, pattern: '^[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)+$' },
    plan: { type: 'string', enum: ['standard', 'enterprise'] },
    appStatus,
    features,
    paymentAllowed: boolean,
    paymentExpired: boolean,
    days: { type: ['integer', 'null'] },
  }),
  install: {
    ...object({ mode: { type: 'string', enum: ['event', 'ui'] }, handlerUrl: { type: 'string' } }, [
      'mode',
    ]),
    if: { properties: { mode: { const: 'event' } } },
    then: { required: ['handlerUrl'] },
  },
  offlineEvents: object({
    events: {
      type: 'array',
      items: object(
        {
          event: { type: 'string', minLength: 1 },
          data: {},
          messageId: { type: 'string', minLength: 1 },
        },
        ['event'],
      ),
    },
    count: { type: 'integer', minimum: 0, maximum: 10_000_000 },
    event: { type: 'string', minLength: 1 },
    notify: boolean,
    userId: { type: 'integer', minimum: 0 },
    asAppCall: object({ authConnector: { type: 'string' } }),
  }),
  uninstall: object({ clean: boolean }),
  publishVersion: object({}),
  changeLicense: object({
    appStatus,
    paymentExpired: boolean,
    days: { type: ['integer', 'null'] },
    notify: boolean,
  }),
  expireTokens: object({ refresh: boolean }),
  faults: object({
    errorRate: rate,
    latencyMs: { type: 'integer', minimum: 0 },
    timeoutRate: rate,
    gatewayTimeoutRate: rate,
    overload: boolean,
    portalDeleted: boolean,
    rateLimit: object(
      { rps: { type: 'number', minimum: 0 }, burst: { type: 'number', minimum: 1 } },
      ['rps', 'burst'],
    ),
    wrongLicense: boolean,
    insufficientScope: { type: 'integer', enum: [401, 403] },
    operatingLimitSeconds: { type: 'number', minimum: 0 },
    methods: { type: 'array', items: { type: 'string', minLength: 1 } },
    loopRule: boolean,
    unstableTies: boolean,
    paymentAllowed: boolean,
    paymentExpired: boolean,
    days: { type: ['integer', 'null'] },
    appStatus,
    features,
  }),
  operatingTime: object({
    limitSeconds: { type: 'number', minimum: 0 },
    costs: {
      type: 'object',
      additionalProperties: object(
        {
          baseSeconds: { type: 'number', minimum: 0, maximum: 60 },
          perRowSeconds: { type: 'number', minimum: 0, maximum: 1 },
        },
        ['baseSeconds', 'perRowSeconds'],
      ),
    },
    batchBilling: { type: 'string', enum: ['commands', 'batch'] },
  }),
  purgeReserved: object({ olderThanSeconds: { type: 'number', minimum: 0 } }),
  authorizationCode: object({ userId: { type: 'integer', minimum: 1 }, admin: boolean }),
  userAction: object(
    {
      method: { type: 'string', minLength: 1 },
      params: { type: 'object' },
      userId: { type: 'integer', minimum: 1 },
    },
    ['method'],
  ),
  openAppFrame: object({
    userId: { type: 'integer', minimum: 1 },
    admin: boolean,
    placement: { type: 'string', minLength: 1, maxLength: 100 },
    placementOptions: { type: 'object' },
  }),
  clockAdvance: object({ seconds: { type: 'number', minimum: 0 } }, ['seconds']),
  tokensQuery: object({ memberId: { type: 'string', minLength: 1 } }),
  seedDeals: object({
    deals: { type: 'array', maxItems: 100_000, items: { type: 'object' } },
    count: { type: 'integer', minimum: 0, maximum: 100_000 },
  }),
};

/** The control API under `/_emulator`: JSON in, JSON out, one service call per route. */
export async function registerControlRoutes(
  app: FastifyInstance,
  control: EmulatorControl,
): Promise<void> {
  await app.register(
    async (routes) => {
      // A body is optional where every field is: `curl -X POST …/install-finish` is enough.
      routes.addHook('preValidation', async (request) => {
        request.body ??= {};
      });

      routes.post<{ Body: CreatePortalRequest }>(
        '/portals',
        { schema: { body: schemas.createPortal } },
        async (request, reply) => reply.code(201).send(control.createPortal(request.body)),
      );
      routes.post<{ Params: MemberIdParams; Body: InstallRequest }>(
        '/portals/:memberId/install',
        { schema: { params: memberIdParams, body: schemas.install } },
        async (request) => control.install(request.params.memberId, request.body),
      );
      routes.post<{ Params: MemberIdParams }>(
        '/portals/:memberId/install-finish',
        { schema: { params: memberIdParams } },
        async (request) => control.finishInstall(request.params.memberId),
      );
      routes.post<{ Params: MemberIdParams; Body: EnqueueOfflineEventsRequest }>(
        '/portals/:memberId/offline-events',
        {
          schema: { params: memberIdParams, body: schemas.offlineEvents },
          bodyLimit: 256 * 1024 * 1024,
        },
        async (request) => control.enqueueOfflineEvents(request.params.memberId, request.body),
      );
      routes.post<{ Params: MemberIdParams; Body: UninstallRequest }>(
        '/portals/:memberId/uninstall',
        { schema: { params: memberIdParams, body: schemas.uninstall } },
        async (request) => control.uninstall(request.params.memberId, request.body),
      );
      routes.post<{ Params: MemberIdParams }>(
        '/portals/:memberId/app-versions',
        { schema: { params: memberIdParams, body: schemas.publishVersion } },
        async (request, reply) =>
          reply.code(201).send(await control.publishVersion(request.params.memberId)),
      );
      routes.post<{ Params: MemberIdParams; Body: ChangeLicenseRequest }>(
        '/portals/:memberId/license',
        { schema: { params: memberIdParams, body: schemas.changeLicense } },
        async (request) => control.changeLicense(request.params.memberId, request.body),
      );
      routes.post<{ Params: MemberIdParams; Body: ExpireTokensRequest }>(
        '/portals/:memberId/expire-tokens',
        { schema: { params: memberIdParams, body: schemas.expireTokens } },
        async (request) => control.expireTokens(request.params.memberId, request.body),
      );
      routes.put<{ Params: MemberIdParams; Body: PortalFaults }>(
        '/portals/:memberId/faults',
        { schema: { params: memberIdParams, body: schemas.faults } },
        async (request) => control.setFaults(request.params.memberId, request.body),
      );
      routes.put<{ Params: MemberIdParams; Body: OperatingTimeSettings }>(
        '/portals/:memberId/operating-time',
        { schema: { params: memberIdParams, body: schemas.operatingTime } },
        async (request) => control.setOperatingTime(request.params.memberId, request.body),
      );
      routes.delete<{ Params: MemberIdParams }>(
        '/portals/:memberId/faults',
        { schema: { params: memberIdParams } },
        async (request) => control.clearFaults(request.params.memberId),
      );
      routes.get<{ Params: MemberIdParams }>(
        '/portals/:memberId/stats',
        { schema: { params: memberIdParams } },
        async (request) => control.stats(request.params.memberId),
      );
      routes.get<{ Params: MemberIdParams }>(
        '/portals/:memberId/sent',
        { schema: { params: memberIdParams } },
        async (request) => control.sent(request.params.memberId),
      );
      routes.get<{ Params: MemberIdParams }>(
        '/portals/:memberId/requests',
        { schema: { params: memberIdParams } },
        async (request) => control.requests(request.params.memberId),
      );
      routes.post<{ Params: MemberIdParams; Body: SeedDealsRequest }>(
        '/portals/:memberId/crm/deals',
        {
          schema: { params: memberIdParams, body: schemas.seedDeals },
          bodyLimit: 64 * 1024 * 1024,
        },
        async (request) => control.seedDeals(request.params.memberId, request.body),
      );
      routes.post<{ Params: MemberIdParams; Body: PurgeReservedRequest }>(
        '/portals/:memberId/purge-reserved',
        { schema: { params: memberIdParams, body: schemas.purgeReserved } },
        async (request) => control.purgeReserved(request.params.memberId, request.body),
      );
      routes.post<{ Params: MemberIdParams; Body: AuthorizationCodeRequest }>(
        '/portals/:memberId/authorization-codes',
        { schema: { params: memberIdParams, body: schemas.authorizationCode } },
        async (request) => control.createAuthorizationCode(request.params.memberId, request.body),
      );
      routes.post<{ Params: MemberIdParams; Body: UserActionRequest }>(
        '/portals/:memberId/user-actions',
        { schema: { params: memberIdParams, body: schemas.userAction } },
        async (request) => control.userAction(request.params.memberId, request.body),
      );
      routes.post<{ Params: MemberIdParams; Body: OpenAppFrameRequest }>(
        '/portals/:memberId/app-frames',
        { schema: { params: memberIdParams, body: schemas.openAppFrame } },
        async (request) => control.openAppFrame(request.params.memberId, request.body),
      );
      routes.get<{ Querystring: { memberId?: string } }>(
        '/tokens',
        { schema: { querystring: schemas.tokensQuery } },
        async (request) => control.tokens(request.query.memberId),
      );
      routes.post<{ Body: ClockAdvanceRequest }>(
        '/clock/advance',
        { schema: { body: schemas.clockAdvance } },
        async (request) => control.advanceClock(request.body),
      );
      routes.post<{ Params: MemberIdParams; Body: MoveDomainRequest }>(
        '/portals/:memberId/domain',
        {
          schema: {
            params: memberIdParams,
            body: object({ domain: domainName, loop: boolean }, ['domain']),
          },
        },
        async (request) => control.moveDomain(request.params.memberId, request.body),
      );
      routes.post<{ Params: RobotParams; Body: RunRobotRequest }>(
        '/portals/:memberId/robots/:code/run',
        {
          schema: {
            params: object(
              {
                memberId: { type: 'string', minLength: 1 },
                code: { type: 'string', minLength: 1, maxLength: 128 },
              },
              ['memberId', 'code'],
            ),
            body: object({
              documentId: { type: 'string', pattern: '^[A-Za-z0-9_]{1,64}$' },
              properties: { type: 'object' },
              useSubscription: boolean,
              timeoutDuration: { type: 'integer', minimum: 0 },
            }),
          },
        },
        async (request) =>
          control.runRobot(request.params.memberId, request.params.code, request.body),
      );
      routes.get<{ Params: MemberIdParams }>(
        '/portals/:memberId/robot-answers',
        { schema: { params: memberIdParams } },
        async (request) => control.robotAnswers(request.params.memberId),
      );
      routes.get<{ Params: MemberIdParams }>(
        '/portals/:memberId/robots',
        { schema: { params: memberIdParams } },
        async (request) => control.robots(request.params.memberId),
      );
    },
    { prefix: '/_emulator' },
  );
}
