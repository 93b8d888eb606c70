import { queryOptions, useQuery } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';

export type RolesResponse = Schemas['RolesResponse'];

/** `GET /governance/roles`: every role, its permissions and rate limit. */
export const fetchRoles = (signal?: AbortSignal) =>
  request<RolesResponse>('/governance/roles', { signal });

export const rolesQuery = () =>
  queryOptions({
    queryKey: ['governance', 'roles'],
    queryFn: ({ signal }) => fetchRoles(signal),
    staleTime: Infinity,
  });

export const useRoles = () => useQuery(rolesQuery());
