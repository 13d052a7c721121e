import type { AppFrameForm } from '../../src/emulator';
import type { Harness } from '../webhooks/webhook-harness';

export interface FrameAnswer {
  status: number;
  contentType: string;
  html: string;
  /** The session from `<meta name="b24-session">`, or null. */
  session: string | null;
}

/** Posts a frame form to the app's URL as the browser inside Bitrix24's iframe does. */
export async function postFrame(
  harness: Harness,
  frame: AppFrameForm,
  override: Record<string, string> = {},
): Promise<FrameAnswer> {
  const query = new URLSearchParams(frame.query).toString();
  const response = await fetch(`${harness.app.url}/bitrix24/app?${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ ...frame.form, ...override }).toString(),
  });
  const html = await response.text();
  const match = /<meta name="b24-session" content="([^"]+)">/.exec(html);
  return {
    status: response.status,
    contentType: response.headers.get('content-type') ?? '',
    html,
    session: match?.[1] ?? null,
  };
}

export async function me(
  harness: Harness,
  session: string | null,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${harness.app.url}/app-api/me`, {
    headers: session === null ? {} : { authorization: `Bearer ${session}` },
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}
