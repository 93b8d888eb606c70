// Query keys of one budget, the positions of this tab's own writes to it, and where the budget
// reads stand against the socket.
import { ReadMark } from '@/lib/live/readMark';

export interface BudgetRef {
  tenant_id: string;
  project_id: string;
}

export const budgetId = (b: BudgetRef) => `${b.tenant_id}/${b.project_id}`;

export const budgetKeys = {
  all: (b: BudgetRef) => ['budget', budgetId(b)] as const,
  state: (b: BudgetRef) => ['budget', budgetId(b), 'state'] as const,
  reservations: (b: BudgetRef) => ['budget', budgetId(b), 'reservations'] as const,
  usage: (b: BudgetRef, minutes: number) => ['budget', budgetId(b), 'usage', minutes] as const,
};

const ownWrites = new Map<string, number>();

/**
 * The position of the last write this tab made to the budget, or of the last event of it the
 * socket delivered: reads wait for it (`min_position`), because the socket carries an event as
 * soon as it is published, before the read model has applied it.
 */
export const ownPosition = (b: BudgetRef): number | undefined => ownWrites.get(budgetId(b));

export function rememberWrite(b: BudgetRef, position: number | null | undefined): void {
  if (typeof position !== 'number') return;
  const id = budgetId(b);
  ownWrites.set(id, Math.max(ownWrites.get(id) ?? 0, position));
}

/**
 * Where the budget page's reads stand: it subscribes to `budget` from there, so an event its
 * reads do not show (committed before the socket stood where it does, but not yet applied by
 * the read model at the read) arrives and reads them again.
 */
export const budgetReads = new ReadMark();
