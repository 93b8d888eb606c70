// The names of a budget's statuses (Governance's counts, filter and table). No MUI Chip here:
// the Governance table draws its status chips as styled text, and importing MUI's Chip for
// a label brought its code (and its module's evaluation) into the page's chunk.
const labels = { ok: 'OK', warning: 'Warning', exhausted: 'Exhausted', no_budget: 'No budget' };

export type BudgetStatusName = keyof typeof labels;

export const statusLabel = (s: BudgetStatusName) => labels[s];
