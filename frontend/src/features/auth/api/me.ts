import { queryOptions } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { SessionUser } from '@/lib/session';

/** `GET /auth/me`: who the session cookie belongs to (401 when none). */
export const fetchMe = (signal?: AbortSignal) =>
  request<SessionUser>('/auth/me', { signal, expect401: true });

export const meQuery = () =>
  queryOptions({ queryKey: ['auth', 'me'], queryFn: ({ signal }) => fetchMe(signal) });
