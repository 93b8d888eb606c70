import { queryOptions, useQuery } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';

export type Stats = Schemas['StatsResponse'];

/** `GET /stats`: request rate, errors, latency, events and the last hour per minute. */
export const fetchStats = (signal?: AbortSignal) => request<Stats>('/stats', { signal });

export const statsQuery = () =>
  queryOptions({ queryKey: ['dashboard', 'stats'], queryFn: ({ signal }) => fetchStats(signal) });

export const useStats = () => useQuery(statsQuery());
