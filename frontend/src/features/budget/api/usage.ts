import { queryOptions, useQuery } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import { budgetKeys, budgetReads, ownPosition, type BudgetRef } from './keys';

export type Usage = Schemas['UsageResponse'];

/**
 * `GET /budget/usage`: used and reserved over time, the burn rate and the projected exhaustion;
 * after this tab's own write (or an event of the budget) it waits for that position.
 */
export const fetchUsage = (b: BudgetRef, minutes: number, signal?: AbortSignal) =>
  budgetReads.read(
    () =>
      request<Usage>('/budget/usage', {
        query: { ...b, minutes, min_position: ownPosition(b) },
        signal,
      }),
    budgetKeys.usage(b, minutes),
  );

export const usageQuery = (b: BudgetRef, minutes: number) =>
  queryOptions({
    queryKey: budgetKeys.usage(b, minutes),
    queryFn: ({ signal }) => fetchUsage(b, minutes, signal),
  });

export const useUsage = (b: BudgetRef, minutes = 60) => useQuery(usageQuery(b, minutes));
