import type { BudgetRow, BudgetStatus } from '../api/status';
import { statuses } from '../api/status';

export const sortKeys = ['name', 'utilisation', 'used', 'reserved', 'available', 'limit'] as const;
export type SortKey = (typeof sortKeys)[number];

export interface ViewParams {
  q: string;
  status?: BudgetStatus;
  sort: SortKey;
  dir: 'asc' | 'desc';
}

/** The view as the URL carries it (a filtered view is a link that can be shared). */
export function readParams(p: URLSearchParams): ViewParams {
  const status = p.get('status') as BudgetStatus | null;
  const sort = p.get('sort') as SortKey | null;
  return {
    q: p.get('q') ?? '',
    status: status && statuses.includes(status) ? status : undefined,
    sort: sort && sortKeys.includes(sort) ? sort : 'name',
    dir: p.get('dir') === 'desc' ? 'desc' : 'asc',
  };
}

export function writeParams(v: ViewParams): URLSearchParams {
  const p = new URLSearchParams();
  if (v.q) p.set('q', v.q);
  if (v.status) p.set('status', v.status);
  if (v.sort !== 'name') p.set('sort', v.sort);
  if (v.dir !== 'asc') p.set('dir', v.dir);
  return p;
}

const num = (r: BudgetRow, k: SortKey): number => {
  switch (k) {
    case 'utilisation':
      return r.utilisation_percent ?? -1;
    case 'used':
      return r.used;
    case 'reserved':
      return r.reserved;
    case 'available':
      return r.available ?? -1;
    case 'limit':
      return r.limit ?? -1;
    default:
      return 0;
  }
};

/** Search (tenant or project contains the text) and sort, over the rows the server sent. */
export function applyView(rows: BudgetRow[], v: ViewParams): BudgetRow[] {
  const q = v.q.trim().toLowerCase();
  const out = q
    ? rows.filter(
        (r) => r.tenant_id.toLowerCase().includes(q) || r.project_id.toLowerCase().includes(q),
      )
    : rows.slice();
  const sign = v.dir === 'asc' ? 1 : -1;
  if (v.sort === 'name') {
    if (sign < 0) out.reverse();
    return out;
  }
  return out.sort((a, b) => sign * (num(a, v.sort) - num(b, v.sort)));
}
