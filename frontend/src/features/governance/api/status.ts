import { keepPreviousData, useQueries, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useMemo, useRef } from 'react';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import { useLiveEvents, useLiveTopics } from '@/lib/live/LiveProvider';
import { ReadMark } from '@/lib/live/readMark';
import { keyedThrottle } from '@/lib/throttle';

export type GovernanceStatus = Schemas['GovernanceStatus'];
export type BudgetRow = Schemas['BudgetRowBody'];
export type BudgetStatus = BudgetRow['status'];
export const statuses: BudgetStatus[] = ['ok', 'warning', 'exhausted', 'no_budget'];
export const sortKeys = ['name', 'utilisation', 'used', 'reserved', 'available', 'limit'] as const;
export type SortKey = (typeof sortKeys)[number];

/** What the table shows: the server searches, filters, sorts and pages (`GET /governance/status`). */
export interface StatusView {
  q: string;
  status?: BudgetStatus;
  sort: SortKey;
  dir: 'asc' | 'desc';
}

/** Rows per request: a screen is ~15 rows, so the first view reads one small page. */
export const PAGE = 100;

/**
 * Where the Governance reads stand: the page subscribes to `budget` from there, so a budget
 * event its pages do not show arrives and reads them again.
 */
export const governanceReads = new ReadMark();

/** `GET /governance/status`, one page; `minPosition` waits for an event the socket delivered. */
export function fetchStatusPage(
  view: StatusView,
  offset: number,
  minPosition?: number,
  signal?: AbortSignal,
) {
  return governanceReads.read(
    () =>
      request<GovernanceStatus>('/governance/status', {
        query: {
          q: view.q.trim() || undefined,
          status: view.status,
          sort: view.sort === 'name' ? undefined : view.sort,
          dir: view.dir === 'asc' ? undefined : view.dir,
          limit: PAGE,
          offset,
          min_position: minPosition || undefined,
        },
        signal,
      }),
    [...statusKey(view), offset],
  );
}

export const statusKey = (v: StatusView) =>
  ['governance', 'status', v.status ?? 'all', v.q.trim(), v.sort, v.dir] as const;

/**
 * The pages to read for rows `first..=last` on screen: theirs, the next two (a reader scrolls on,
 * and a row that arrives after it is on screen is drawn twice: empty, then filled), the one
 * before, and the first (it carries the counts).
 */
export function pagesFor(first: number, last: number): number[] {
  const out = new Set([0]);
  const from = Math.floor(Math.max(0, first - PAGE) / PAGE) * PAGE;
  for (let o = from; o <= last + 2 * PAGE; o += PAGE) out.add(o);
  return [...out].sort((a, b) => a - b);
}

/** The position of the newest budget event the socket delivered (0: none yet). */
export type Barrier = { current: number };

/** The page at `offset` of a view; `barrier` holds the newest budget event's position. */
function pageQuery(view: StatusView, offset: number, barrier: Barrier) {
  return {
    queryKey: [...statusKey(view), offset] as const,
    queryFn: ({ signal }: { signal: AbortSignal }) =>
      fetchStatusPage(view, offset, barrier.current, signal),
    // Current until a budget event says otherwise (useGovernanceLive).
    staleTime: Infinity,
  };
}

/**
 * Keeps every Governance query current from the socket's budget events: each burst (at most
 * every 200 ms) re-reads the pages on screen, once the read model has applied the newest event
 * (`min_position` = the returned barrier), so a change never shows and then vanishes. Lists
 * never poll.
 */
export function useGovernanceLive(): Barrier {
  const qc = useQueryClient();
  const barrier = useRef(0);
  const throttle = useMemo(
    () =>
      keyedThrottle<string>(200, () => {
        void qc.invalidateQueries({ queryKey: ['governance', 'status'] });
      }),
    [qc],
  );
  useLiveTopics(['budget'], { reads: governanceReads, onGap: () => throttle.push('gap') });
  useEffect(() => () => throttle.cancel(), [throttle]);
  useLiveEvents((e) => {
    if (e.aggregate_type !== 'Budget') return;
    barrier.current = e.position;
    throttle.push(e.aggregate_id);
  });
  return barrier;
}

/**
 * The first page of a view: its counts, open breakers and dead letters, how many rows match.
 * A new search or sort keeps the last answer on screen until its own arrives.
 */
export function useStatusSummary(view: StatusView, barrier: Barrier) {
  return useQuery({ ...pageQuery(view, 0, barrier), placeholderData: keepPreviousData });
}

/** The rows of the pages at `offsets` of a view: `rowAt(i)` once row i's page has arrived. */
export function useStatusRows(
  view: StatusView,
  offsets: number[],
  barrier: Barrier,
): (i: number) => BudgetRow | undefined {
  const pages = useQueries({ queries: offsets.map((o) => pageQuery(view, o, barrier)) });
  const byOffset = new Map<number, GovernanceStatus | undefined>();
  offsets.forEach((o, i) => byOffset.set(o, pages[i]!.data));
  return (i) => byOffset.get(Math.floor(i / PAGE) * PAGE)?.rows[i % PAGE];
}
