import { queryOptions, useQuery } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';

export type GovernanceSummary = Schemas['GovernanceStatus'];

/**
 * `GET /governance/status` for the alerts: the counts, open breakers and dead letters, and the
 * budgets at warning or exhausted (the most used few of each).
 */
export const fetchAlertsSource = async (signal?: AbortSignal) => {
  const [exhausted, warning] = await Promise.all([
    request<GovernanceSummary>('/governance/status', {
      query: { status: 'exhausted', sort: 'utilisation', dir: 'desc', limit: 5 },
      signal,
    }),
    request<GovernanceSummary>('/governance/status', {
      query: { status: 'warning', sort: 'utilisation', dir: 'desc', limit: 5 },
      signal,
    }),
  ]);
  return { exhausted, warning };
};

export const alertsQuery = () =>
  queryOptions({
    queryKey: ['dashboard', 'alerts'],
    queryFn: ({ signal }) => fetchAlertsSource(signal),
  });

export const useAlertsSource = (enabled: boolean) => useQuery({ ...alertsQuery(), enabled });
