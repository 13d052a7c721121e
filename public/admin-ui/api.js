// The admin API, called with the operator's token. The token lives in sessionStorage only: it is
// gone when the tab closes, and it is never put in a URL, a cookie or localStorage.

const TOKEN_KEY = 'adminConsoleToken';

export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  signIn: (token) => sessionStorage.setItem(TOKEN_KEY, token),
  signOut: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let unauthorizedHandler = () => {};

/** Called when the API refuses the stored token (it changed, or was never right). */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

/** One admin API call; answers the JSON body or throws ApiError with the API's error code. */
export async function api(method, path, { query, token = session.token() } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(name, value);
  }
  let response;
  try {
    response = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${token ?? ''}`, accept: 'application/json' },
      cache: 'no-store',
      credentials: 'omit',
      referrerPolicy: 'no-referrer',
    });
  } catch (error) {
    throw new ApiError(0, 'network_error', `The server did not answer (${error.message})`);
  }
  let body;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const error = new ApiError(
      response.status,
      body?.error?.code ?? `http_${response.status}`,
      body?.error?.message ?? response.statusText,
    );
    if (response.status === 401) unauthorizedHandler(error);
    throw error;
  }
  return body;
}

/** A readable one-liner for an API failure. */
export function describeError(error) {
  if (error instanceof ApiError) {
    return error.status
      ? `${error.status} ${error.code}: ${error.message}`
      : `${error.code}: ${error.message}`;
  }
  return String(error?.message ?? error);
}
