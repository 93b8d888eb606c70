import { useQuery, useQueryClient, type QueryClient } from '@tanstack/react-query';
import { useEffect, useMemo } from 'react';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import { useLiveEvents, useLiveTopics } from '@/lib/live/LiveProvider';
import { keyedThrottle } from '@/lib/throttle';

export type GovernanceStatus = Schemas['GovernanceStatus'];
export type BudgetRow = Schemas['BudgetRowBody'];
export type BudgetStatus = BudgetRow['status'];
export const statuses: BudgetStatus[] = ['ok', 'warning', 'exhausted', 'no_budget'];

const PAGE = 1000;
const PARALLEL = 4;

export interface StatusFilter {
  status?: BudgetStatus;
}

/** `GET /governance/status`, one page. */
export function fetchStatusPage(filter: StatusFilter, offset: number, signal?: AbortSignal) {
  return request<GovernanceStatus>('/governance/status', {
    query: { status: filter.status, limit: PAGE, offset },
    signal,
  });
}

/**
 * Every row of the filter: the server pages by 1,000, so the first page tells how many match
 * and the rest are read at most `PARALLEL` at a time.
 */
export async function fetchAllStatus(
  filter: StatusFilter,
  signal?: AbortSignal,
  onPartial?: (partial: GovernanceStatus) => void,
): Promise<GovernanceStatus> {
  const first = await fetchStatusPage(filter, 0, signal);
  const offsets: number[] = [];
  for (let o = PAGE; o < first.matching; o += PAGE) offsets.push(o);
  const pages: BudgetRow[][] = [first.rows];
  for (let i = 0; i < offsets.length; i += PARALLEL) {
    const batch = await Promise.all(
      offsets.slice(i, i + PARALLEL).map((o) => fetchStatusPage(filter, o, signal)),
    );
    onPartial?.({ ...first, rows: pages.flat() });
    pages.push(...batch.map((b) => b.rows));
  }
  return { ...first, rows: pages.flat() };
}

export const statusKey = (filter: StatusFilter) =>
  ['governance', 'status', filter.status ?? 'all'] as const;

/**
 * The first load shows each 1,000 rows as they arrive (the first page in one request's time);
 * a re-read replaces the list only when complete, so the table never shrinks under the reader.
 */
export function useGovernanceStatus(filter: StatusFilter) {
  const qc = useQueryClient();
  const key = statusKey(filter);
  return useQuery({
    queryKey: key,
    queryFn: ({ signal }) =>
      fetchAllStatus(filter, signal, (partial) => {
        const current = qc.getQueryData<GovernanceStatus>(key);
        if (!current || isPartial(current)) qc.setQueryData(key, partial);
      }),
  });
}

const isPartial = (d: GovernanceStatus | undefined) => !!d && d.rows.length < d.matching;

/**
 * Keeps the status table current from the socket's budget events: a change to a budget already
 * listed re-reads only the page that holds it (rows are ordered by tenant and project); a new
 * budget, or any change under a status filter (a row may enter or leave it), re-reads the list.
 */
export function useGovernanceLive(filter: StatusFilter) {
  useLiveTopics(['budget']);
  const qc = useQueryClient();
  const throttle = useMemo(() => {
    const positions = new Map<string, number>();
    return {
      positions,
      ...keyedThrottle<string>(200, (ids) => {
        const latest = Math.max(...[...ids].map((id) => positions.get(id) ?? 0));
        const barrierId = [...ids].find((id) => positions.get(id) === latest);
        for (const id of ids) positions.delete(id);
        void waitForPosition(barrierId, latest).then(() => refresh(qc, filter, ids));
      }),
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [qc, filter.status]);
  useEffect(() => () => throttle.cancel(), [throttle]);
  useLiveEvents((e) => {
    if (e.aggregate_type !== 'Budget') return;
    throttle.positions.set(e.aggregate_id, e.position);
    throttle.push(e.aggregate_id);
  });
}

/**
 * The socket can deliver an event before the read model has applied it, and
 * /governance/status takes no `min_position`: a read of the budget's state with
 * `min_position` (which waits until the read model has applied that position) goes first.
 */
async function waitForPosition(budgetId: string | undefined, position: number) {
  if (!budgetId || position <= 0) return;
  const [tenant_id, project_id] = budgetId.split('/');
  await request('/budget/state', {
    query: { tenant_id, project_id, min_position: position },
  }).catch(() => {});
}

async function refresh(qc: QueryClient, filter: StatusFilter, ids: Set<string>) {
  const key = statusKey(filter);
  const data = qc.getQueryData<GovernanceStatus>(key);
  if (!data || filter.status) {
    await qc.invalidateQueries({ queryKey: ['governance', 'status'] });
    return;
  }
  const index = new Map(data.rows.map((r, i) => [`${r.tenant_id}/${r.project_id}`, i]));
  const offsets = new Set<number>();
  for (const id of ids) {
    const i = index.get(id);
    if (i === undefined) {
      await qc.invalidateQueries({ queryKey: ['governance', 'status'] });
      return;
    }
    offsets.add(Math.floor(i / PAGE) * PAGE);
  }
  const pages = await Promise.all(
    [...offsets].map((o) => fetchStatusPage(filter, o).then((p) => [o, p] as const)),
  );
  qc.setQueryData<GovernanceStatus>(key, (old) => {
    if (!old) return old;
    const rows = old.rows.slice();
    let latest = old;
    for (const [o, p] of pages) {
      rows.splice(o, p.rows.length, ...p.rows);
      latest = p;
    }
    return { ...latest, rows, matching: Math.max(latest.matching, rows.length) };
  });
  // Other status filters cached earlier are stale now.
  await qc.invalidateQueries({
    queryKey: ['governance', 'status'],
    predicate: (q) => q.queryKey[2] !== 'all',
  });
}
