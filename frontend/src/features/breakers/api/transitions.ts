import { useQuery } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import { breakerKeys } from './keys';

export type Transition = Schemas['TransitionBody'];
/** `openings`: each opening with its cause; `overrides`: operators' changes with who and why. */
export type TransitionKind = 'all' | 'openings' | 'overrides';

/** `GET /circuit-breakers/{name}/transitions`: the latest state changes of a kind, newest first. */
export const fetchTransitions = (name: string, kind: TransitionKind, signal?: AbortSignal) =>
  request<Schemas['TransitionsResponse']>(
    `/circuit-breakers/${encodeURIComponent(name)}/transitions`,
    { query: { limit: 10, kind }, signal },
  );

/** Read when shown; under the breaker's key, so its events re-read it. */
export const useTransitions = (name: string, kind: TransitionKind, enabled: boolean) =>
  useQuery({
    queryKey: [...breakerKeys.one(name), 'transitions', kind],
    queryFn: ({ signal }) => fetchTransitions(name, kind, signal),
    enabled,
  });
