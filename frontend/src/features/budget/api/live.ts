import { useQueryClient } from '@tanstack/react-query';
import { useLiveEvents, useLiveTopics } from '@/lib/live/LiveProvider';
import { budgetId, budgetKeys, rememberWrite, type BudgetRef } from './keys';

/** The budget's events (reservations made anywhere: this form, NATS, other users) refresh it. */
export function useBudgetLive(b: BudgetRef | null) {
  useLiveTopics(b ? ['budget'] : []);
  const qc = useQueryClient();
  useLiveEvents((e) => {
    if (b && e.aggregate_type === 'Budget' && e.aggregate_id === budgetId(b)) {
      rememberWrite(b, e.position);
      void qc.invalidateQueries({ queryKey: budgetKeys.all(b) });
    }
  });
}
