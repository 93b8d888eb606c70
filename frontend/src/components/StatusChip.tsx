import { Chip } from '@mui/material';

const colours = {
  ok: 'success',
  warning: 'warning',
  exhausted: 'error',
  no_budget: 'default',
} as const;

const labels = { ok: 'OK', warning: 'Warning', exhausted: 'Exhausted', no_budget: 'No budget' };

export type BudgetStatusName = keyof typeof colours;

export function StatusChip({ status }: { status: BudgetStatusName }) {
  return (
    <Chip
      size="small"
      color={colours[status]}
      label={labels[status]}
      variant={status === 'no_budget' ? 'outlined' : 'filled'}
    />
  );
}

export const statusLabel = (s: BudgetStatusName) => labels[s];
