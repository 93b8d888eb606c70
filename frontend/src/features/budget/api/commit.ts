import { z } from 'zod';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import type { BudgetRef } from './keys';
import { useBudgetWrite } from './mutate';

export const commitSchema = z.object({
  reservation_id: z.string().uuid(),
  actual_tokens: z.coerce.number().int('A whole number').min(0, 'At least 0'),
});
export type CommitInput = z.infer<typeof commitSchema>;

/** `POST /budget/commit`: the tokens a reserved task actually used. */
export const commit = (input: CommitInput) =>
  request<Schemas['CommitResponse']>('/budget/commit', { method: 'POST', body: input });

export const useCommit = (b: BudgetRef) => useBudgetWrite(b, commit);
