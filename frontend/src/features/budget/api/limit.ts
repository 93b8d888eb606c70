import { z } from 'zod';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import type { BudgetRef } from './keys';
import { useBudgetWrite } from './mutate';

export const limitSchema = z.object({
  total_tokens: z.coerce.number().int('A whole number').min(0, 'At least 0'),
});

/** `PUT /budget/limit` (admin:budget). */
export const setLimit = (b: BudgetRef, total_tokens: number) =>
  request<Schemas['LimitResponse']>('/budget/limit', {
    method: 'PUT',
    body: { ...b, total_tokens },
  });

export const useSetLimit = (b: BudgetRef) => useBudgetWrite(b, (n: number) => setLimit(b, n));
