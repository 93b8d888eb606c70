import { useMutation, useQueryClient } from '@tanstack/react-query';
import { budgetKeys, rememberWrite, type BudgetRef } from './keys';

/**
 * A write to one budget: remembers the position it answered with (the next reads wait for it)
 * and invalidates the budget's queries.
 */
export function useBudgetWrite<I, O extends { position?: number | null }>(
  b: BudgetRef,
  write: (input: I) => Promise<O>,
) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: write,
    onSuccess: (out) => {
      rememberWrite(b, out.position);
      void qc.invalidateQueries({ queryKey: budgetKeys.all(b) });
    },
  });
}
