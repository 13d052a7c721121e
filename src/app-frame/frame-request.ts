/** The form Bitrix24 posts to the app's URL (and every placement's handler URL) inside its iframe. */
export interface FrameRequest {
  readonly memberId: string;
  readonly accessToken: string;
  /** Seconds the access token lives, as the portal says (AUTH_EXPIRES). */
  readonly authExpiresSeconds: number;
  readonly refreshToken: string | null;
  readonly applicationToken: string;
  readonly placement: string;
  readonly placementOptions: Record<string, unknown>;
}

const MEMBER_ID = /^[A-Za-z0-9_.-]{1,64}$/;
const TOKEN = /^[\x21-\x7e]{1,512}$/;
const PLACEMENT = /^[A-Za-z0-9_.:-]{1,100}$/;
const MAX_PLACEMENT_OPTIONS_CHARS = 16_384;

/** A frame POST that cannot be read; answered 401 like an unverifiable one, with the reason. */
export class FrameRequestInvalidError extends Error {}

function required(form: Record<string, unknown>, name: string, pattern: RegExp): string {
  const value = form[name];
  if (typeof value !== 'string' || value === '') {
    throw new FrameRequestInvalidError(`The request has no ${name}.`);
  }
  if (!pattern.test(value))
    throw new FrameRequestInvalidError(`The request has an invalid ${name}.`);
  return value;
}

/**
 * PLACEMENT_OPTIONS is a JSON object in a string; Bitrix24 sends the string "undefined" (or nothing)
 * when the placement has no options.
 */
export function parsePlacementOptions(value: unknown): Record<string, unknown> {
  if (value === undefined || value === '' || value === 'undefined' || value === 'null') return {};
  if (typeof value !== 'string' || value.length > MAX_PLACEMENT_OPTIONS_CHARS) {
    throw new FrameRequestInvalidError('The request has an invalid PLACEMENT_OPTIONS.');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new FrameRequestInvalidError('The request has an invalid PLACEMENT_OPTIONS.');
  }
  if (Array.isArray(parsed) && parsed.length === 0) return {};
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new FrameRequestInvalidError('The request has an invalid PLACEMENT_OPTIONS.');
  }
  return parsed as Record<string, unknown>;
}

export function parseFrameForm(body: unknown): FrameRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new FrameRequestInvalidError(
      'The request is empty. This page must be opened by Bitrix24.',
    );
  }
  const form = body as Record<string, unknown>;
  const expires = Number(form.AUTH_EXPIRES);
  const refresh = form.REFRESH_ID;
  const placement = form.PLACEMENT;
  return {
    memberId: required(form, 'member_id', MEMBER_ID),
    accessToken: required(form, 'AUTH_ID', TOKEN),
    authExpiresSeconds: Number.isInteger(expires) && expires > 0 ? expires : 0,
    refreshToken: typeof refresh === 'string' && TOKEN.test(refresh) ? refresh : null,
    applicationToken: required(form, 'APPLICATION_TOKEN', TOKEN),
    placement:
      placement === undefined || placement === ''
        ? 'DEFAULT'
        : required(form, 'PLACEMENT', PLACEMENT),
    placementOptions: parsePlacementOptions(form.PLACEMENT_OPTIONS),
  };
}
