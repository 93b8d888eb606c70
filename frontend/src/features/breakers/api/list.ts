import { useQuery } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import { breakerKeys } from './keys';

export type BreakerList = Schemas['BreakerListResponse'];

/** `GET /circuit-breakers`: every breaker that has events, with its state and failures. */
export const fetchBreakers = (signal?: AbortSignal) =>
  request<BreakerList>('/circuit-breakers', { signal });

export const useBreakers = () =>
  useQuery({ queryKey: breakerKeys.list, queryFn: ({ signal }) => fetchBreakers(signal) });
