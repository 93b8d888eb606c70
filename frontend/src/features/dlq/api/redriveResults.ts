import { keepPreviousData, useInfiniteQuery } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import { dlqKeys } from './keys';

export type RedriveResult = Schemas['RedriveResult'];
export type RedriveOutcome = Schemas['RedriveOutcome'];
type Page = Schemas['RedriveResults'];

const PAGE = 100;

/** `GET /dlq/redrive/{job}/results`: what the job did with each entry, in its order. */
export const fetchRedriveResults = (
  id: string,
  outcome: RedriveOutcome | undefined,
  after: number,
  signal?: AbortSignal,
) =>
  request<Page>(`/dlq/redrive/${encodeURIComponent(id)}/results`, {
    query: { outcome, after, limit: PAGE },
    signal,
  });

/**
 * A job's results, 100 at a time. `handled` (the job's moved + skipped + failed) is part of
 * the key: the job's own read (each second while it runs, and on each dead-letter event)
 * changes it, and the results are read again, also for failures, which are not events.
 */
export const useRedriveResults = (
  id: string,
  outcome: RedriveOutcome | undefined,
  handled: number,
  enabled: boolean,
) =>
  useInfiniteQuery({
    queryKey: [...dlqKeys.job(id), 'results', outcome ?? 'all', handled] as const,
    queryFn: ({ pageParam, signal }) => fetchRedriveResults(id, outcome, pageParam, signal),
    initialPageParam: 0,
    getNextPageParam: (last) => last.next_after ?? undefined,
    placeholderData: keepPreviousData,
    enabled,
  });
