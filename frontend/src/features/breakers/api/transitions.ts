import { useQuery } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import { breakerKeys } from './keys';

export type Transition = Schemas['TransitionBody'];

/** `GET /circuit-breakers/{name}/transitions`: the latest state changes, newest first. */
export const fetchTransitions = (name: string, signal?: AbortSignal) =>
  request<Schemas['TransitionsResponse']>(
    `/circuit-breakers/${encodeURIComponent(name)}/transitions`,
    { query: { limit: 10 }, signal },
  );

/** Read when shown; under the breaker's key, so its events re-read it. */
export const useTransitions = (name: string, enabled: boolean) =>
  useQuery({
    queryKey: [...breakerKeys.one(name), 'transitions'],
    queryFn: ({ signal }) => fetchTransitions(name, signal),
    enabled,
  });
