import { restErrors } from '../rest/rest-error';

/**
 * HandlerHelper::checkCallback as the contract describes it (§3): the host must contain a dot
 * (so `localhost` is refused; use 127.0.0.1) and the scheme must be http or https. There is no
 * same-domain or HTTPS requirement.
 */
export function assertValidHandlerUrl(handler: string): void {
  let url: URL;
  try {
    url = new URL(handler);
  } catch {
    throw restErrors.wrongHandlerUrl();
  }
  if (!url.hostname.includes('.')) throw restErrors.wrongHandlerUrl();
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw restErrors.unsupportedProtocol();
}
