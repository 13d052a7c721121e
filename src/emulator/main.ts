import { startEmulator, type RunningEmulator } from './index';

/**
 * `npm run emulator`: a Bitrix24 emulator on loopback for local development, configured by
 * EMULATOR_PORT, EMULATOR_HOST, BITRIX24_CLIENT_ID and BITRIX24_CLIENT_SECRET.
 */
async function main(): Promise<void> {
  const port = Number(process.env.EMULATOR_PORT ?? '4000');
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new Error(`EMULATOR_PORT must be a port number, got "${process.env.EMULATOR_PORT}"`);
  }
  const clientId = process.env.BITRIX24_CLIENT_ID ?? 'local.app';
  const clientSecret = process.env.BITRIX24_CLIENT_SECRET ?? 'local-secret';
  const emulator = await startEmulator({
    host: process.env.EMULATOR_HOST ?? '127.0.0.1',
    port,
    clientId,
    clientSecret,
    onEventSent: (memberId, sent) => {
      const outcome = sent.status === null ? `no answer (${sent.error ?? 'unknown'})` : sent.status;
      console.log(`[${memberId}] ${sent.event} → ${sent.url}: ${outcome}`);
    },
  });
  console.log(instructions(emulator.url, clientId, clientSecret));
  stopOnSignals(emulator);
}

function instructions(url: string, clientId: string, clientSecret: string): string {
  const memberId = 'local-portal';
  return `Bitrix24 emulator listening on ${url}

Point the app at it (handler URLs need a dotted host: use 127.0.0.1, not localhost):
  BITRIX24_OAUTH_URL=${url}
  BITRIX24_CLIENT_ID=${clientId}
  BITRIX24_CLIENT_SECRET=${clientSecret}
  APP_BASE_URL=http://127.0.0.1:3000

Create a portal and install the app on it (ONAPPINSTALL goes to the app's event handler):
  curl -s -X POST ${url}/_emulator/portals -H 'content-type: application/json' \\
    -d '{"memberId":"${memberId}","domain":"acme.bitrix24.test"}' &&
  curl -s -X POST ${url}/_emulator/portals/${memberId}/install -H 'content-type: application/json' \\
    -d '{"mode":"event","handlerUrl":"http://127.0.0.1:3000/bitrix24/events"}'

Then queue offline events, and watch the portal:
  curl -s -X POST ${url}/_emulator/portals/${memberId}/offline-events -H 'content-type: application/json' -d '{"count":100}'
  curl -s ${url}/_emulator/portals/${memberId}/stats

Move the portal to another domain (its old REST address answers 302 with the new one in Location;
the new address is another port of the emulator; "loop":true makes the two redirect to each other):
  curl -s -X POST ${url}/_emulator/portals/${memberId}/domain -H 'content-type: application/json' \\
    -d '{"domain":"acme-new.bitrix24.test"}'
`;
}

function stopOnSignals(emulator: RunningEmulator): void {
  const stop = (signal: NodeJS.Signals): void => {
    console.log(`${signal}: stopping the Bitrix24 emulator`);
    emulator.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
