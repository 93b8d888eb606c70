import { useQueryClient } from '@tanstack/react-query';
import { useLiveEvents, useLiveTopics } from '@/lib/live/LiveProvider';
import { budgetId, budgetKeys, budgetReads, rememberWrite, type BudgetRef } from './keys';

/**
 * The budget's events (reservations made anywhere: this form, NATS, other users) refresh it. The
 * topic is subscribed from where the budget's reads stand, so none they do not show is missed.
 */
export function useBudgetLive(b: BudgetRef | null) {
  const qc = useQueryClient();
  useLiveTopics(b ? ['budget'] : [], {
    reads: budgetReads,
    onGap: () => b && void qc.invalidateQueries({ queryKey: budgetKeys.all(b) }),
  });
  useLiveEvents((e) => {
    if (b && e.aggregate_type === 'Budget' && e.aggregate_id === budgetId(b)) {
      rememberWrite(b, e.position);
      void qc.invalidateQueries({ queryKey: budgetKeys.all(b) });
    }
  });
}
