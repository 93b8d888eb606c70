import { useQuery } from '@tanstack/react-query';
import { request } from '@/lib/http';
import { dlqKeys } from './keys';
import type { RedriveJob } from './redrive';

/** `GET /dlq/redrive/{job}`: the job's progress. */
export const fetchRedriveJob = (id: string, signal?: AbortSignal) =>
  request<RedriveJob>(`/dlq/redrive/${encodeURIComponent(id)}`, { signal });

/**
 * The job's progress. Each entry it moves is a dead-letter event, which re-reads this query
 * (the page's live hook invalidates every `dlq` key); a job's last step (completed) is not an
 * event, so a running job is also read once a second.
 */
export const useRedriveJob = (id: string | undefined) =>
  useQuery({
    queryKey: dlqKeys.job(id ?? ''),
    queryFn: ({ signal }) => fetchRedriveJob(id!, signal),
    enabled: !!id,
    refetchInterval: (q) => (q.state.data?.state === 'running' ? 1000 : false),
  });
