import {
  sortKeys,
  statuses,
  type BudgetStatus,
  type SortKey,
  type StatusView,
} from '../api/status';

export type ViewParams = StatusView;

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
