import { useQueries } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import { breakerKeys } from './keys';

export type Breaker = Schemas['BreakerBody'];
export type BreakerState = Schemas['BreakerState'];

/** `GET /circuit-breakers/{name}`: one breaker in full (configuration, last change, error). */
export const fetchBreaker = (name: string, signal?: AbortSignal) =>
  request<Breaker>(`/circuit-breakers/${encodeURIComponent(name)}`, { signal });

export const useBreakerDetails = (names: string[]) =>
  useQueries({
    queries: names.map((name) => ({
      queryKey: breakerKeys.one(name),
      queryFn: ({ signal }: { signal: AbortSignal }) => fetchBreaker(name, signal),
    })),
  });
