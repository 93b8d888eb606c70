import { env } from '@/config/env';

/** The server's error body: `{"error":{"code","message","field"?}}`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export type Query = Record<string, string | number | boolean | undefined | null>;

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  query?: Query;
  body?: unknown;
  signal?: AbortSignal;
  /** A 401 is an answer the caller handles (login, the session probe), not an expired session. */
  expect401?: boolean;
}

let onUnauthenticated: () => void = () => {};

/** Called on any 401 outside login: the session expired or was revoked. */
export function setUnauthenticatedHandler(handler: () => void): void {
  onUnauthenticated = handler;
}

export function buildUrl(path: string, query?: Query): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
  }
  const qs = params.toString();
  return `${env.apiBase}${path}${qs ? `?${qs}` : ''}`;
}

/**
 * One request, answered with a success status: the session is the HttpOnly `cp_session`
 * cookie (the token is never held in script); `X-Requested-With` is the server's CSRF check on
 * cookie-authenticated writes. An error status becomes an {@link ApiError} from the server's
 * JSON error body (a 401 outside login also ends the session in the store).
 */
export async function fetchOk(
  path: string,
  opts: RequestOptions & { accept?: string } = {},
): Promise<Response> {
  const headers: Record<string, string> = {
    Accept: opts.accept ?? 'application/json',
    'X-Requested-With': 'XMLHttpRequest',
  };
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(buildUrl(path, opts.query), {
    method: opts.method ?? 'GET',
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    credentials: 'same-origin',
    signal: opts.signal,
  });
  if (res.ok) return res;
  const text = await res.text();
  let data: unknown = undefined;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  const err = (data as { error?: { code?: string; message?: string; field?: string } })?.error;
  if (res.status === 401 && !opts.expect401) onUnauthenticated();
  throw new ApiError(
    res.status,
    err?.code ?? 'http_' + res.status,
    err?.message ?? res.statusText ?? 'request failed',
    err?.field,
  );
}

/** One JSON request (see {@link fetchOk}): the parsed answer. */
export async function request<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const text = await (await fetchOk(path, opts)).text();
  try {
    return (text ? JSON.parse(text) : undefined) as T;
  } catch {
    return undefined as T;
  }
}
