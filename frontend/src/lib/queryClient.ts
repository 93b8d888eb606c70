import { QueryClient } from '@tanstack/react-query';
import { ApiError } from './http';

/**
 * Server data lives here. Lists never poll: the WebSocket invalidates or updates them. A query
 * is not retried on a 4xx (the answer will not change by asking again).
 */
export function createQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        staleTime: 30_000,
        refetchOnWindowFocus: false,
        refetchInterval: false,
        retry: (count, err) =>
          !(err instanceof ApiError && err.status >= 400 && err.status < 500) && count < 2,
      },
      mutations: { retry: false },
    },
  });
}
