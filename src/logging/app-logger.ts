import { LoggerService } from '@nestjs/common';
import pino, { DestinationStream, Logger } from 'pino';
import pretty from 'pino-pretty';

const SECRET_KEYS = [
  'access_token',
  'refresh_token',
  'accessToken',
  'refreshToken',
  'application_token',
  'applicationToken',
  'client_secret',
  'clientSecret',
  'AUTH_ID',
  'REFRESH_ID',
  'APPLICATION_TOKEN',
  'auth',
  'authorization',
  'password',
];

/** Secrets are redacted by configuration: any of these keys, at any of the first four levels. */
export const REDACT_PATHS = SECRET_KEYS.flatMap((key) => [
  key,
  `*.${key}`,
  `*.*.${key}`,
  `*.*.*.${key}`,
]);

/** JSON unless asked for readable lines, or `auto` and stdout is a terminal (a person reads it). */
export function usesPrettyLogs(
  format: 'auto' | 'json' | 'pretty',
  stdoutIsTerminal = process.stdout.isTTY === true,
): boolean {
  return format === 'pretty' || (format === 'auto' && stdoutIsTerminal);
}

/**
 * Readable one-line records for a terminal (pino's own pretty printer, in-process and synchronous,
 * so nothing is lost at exit). Secrets are redacted before a record reaches it.
 */
export function prettyDestination(
  destination: NodeJS.WritableStream = process.stdout,
  colorize = process.stdout.isTTY === true,
): DestinationStream {
  return pretty({
    destination,
    colorize,
    sync: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,service',
    messageFormat: '{if component}[{component}] {end}{msg}',
    singleLine: true,
  });
}

export function createPinoLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'bitrix24-app-backend' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/** Structured JSON logging for the whole app; Nest's own messages go through the same logger. */
export class AppLogger implements LoggerService {
  constructor(readonly pino: Logger) {}

  child(component: string, bindings: Record<string, unknown> = {}): Logger {
    return this.pino.child({ component, ...bindings });
  }

  log(message: unknown, context?: string): void {
    this.pino.info({ context }, String(message));
  }
  error(message: unknown, trace?: string, context?: string): void {
    this.pino.error({ context, trace }, String(message));
  }
  warn(message: unknown, context?: string): void {
    this.pino.warn({ context }, String(message));
  }
  debug(message: unknown, context?: string): void {
    this.pino.debug({ context }, String(message));
  }
  verbose(message: unknown, context?: string): void {
    this.pino.trace({ context }, String(message));
  }
}
