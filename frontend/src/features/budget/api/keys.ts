// Query keys of one budget and the positions of this tab's own writes to it.
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

/** The position of the last write this tab made to the budget: reads wait for it (min_position). */
export const ownPosition = (b: BudgetRef): number | undefined => ownWrites.get(budgetId(b));

export function rememberWrite(b: BudgetRef, position: number | null | undefined): void {
  if (typeof position !== 'number') return;
  const id = budgetId(b);
  ownWrites.set(id, Math.max(ownWrites.get(id) ?? 0, position));
}
