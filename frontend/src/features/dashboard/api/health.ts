import { queryOptions, useQuery } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';

export type SystemHealth = Schemas['SystemHealth'];

/** `GET /system/health`: readiness of PostgreSQL, migrations, NATS, the events stream and the sandbox. */
export const fetchHealth = (signal?: AbortSignal) =>
  request<SystemHealth>('/system/health', { signal });

export const healthQuery = () =>
  queryOptions({ queryKey: ['dashboard', 'health'], queryFn: ({ signal }) => fetchHealth(signal) });

export const useHealth = () => useQuery(healthQuery());
