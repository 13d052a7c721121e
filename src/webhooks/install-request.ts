import type { InstallationRequest } from '../portals/installation.service';
import { InstallRequestInvalidError } from '../portals/installation.errors';

const MEMBER_ID = /^[A-Za-z0-9_.-]{1,64}$/;
const TOKEN = /^[\x21-\x7e]{1,512}$/;

function field(body: Record<string, unknown>, name: string, pattern: RegExp): string {
  const value = body[name];
  if (value === undefined || value === '') {
    throw new InstallRequestInvalidError(
      `The installation request has no ${name}. This page must be opened by Bitrix24 while it installs the application.`,
    );
  }
  if (typeof value !== 'string' || !pattern.test(value)) {
    throw new InstallRequestInvalidError(`The installation request has an invalid ${name}.`);
  }
  return value;
}

/**
 * Reads the form Bitrix24 posts to an app's install page. Only what the confirmation needs is kept;
 * AUTH_ID, SERVER_ENDPOINT and the DOMAIN query are claims we never act on (the OAuth server's
 * answer is the truth).
 */
export function parseInstallForm(body: unknown): InstallationRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InstallRequestInvalidError(
      'The installation request is empty. This page must be opened by Bitrix24 while it installs the application.',
    );
  }
  const form = body as Record<string, unknown>;
  return {
    memberId: field(form, 'member_id', MEMBER_ID),
    refreshToken: field(form, 'REFRESH_ID', TOKEN),
    applicationToken: field(form, 'APPLICATION_TOKEN', TOKEN),
  };
}
