import { queryOptions, useQuery } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import { budgetKeys, budgetReads, ownPosition, type BudgetRef } from './keys';

export type BudgetState = Schemas['StateResponse'];

/** `GET /budget/state` after this tab's own last write (404 when no limit was ever set). */
export const fetchState = (b: BudgetRef, signal?: AbortSignal) =>
  budgetReads.read(
    () =>
      request<BudgetState>('/budget/state', {
        query: { ...b, min_position: ownPosition(b) },
        signal,
      }),
    budgetKeys.state(b),
  );

export const stateQuery = (b: BudgetRef) =>
  queryOptions({ queryKey: budgetKeys.state(b), queryFn: ({ signal }) => fetchState(b, signal) });

export const useBudgetState = (b: BudgetRef) => useQuery(stateQuery(b));
