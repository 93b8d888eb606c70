import {
  memo,
  useCallback,
  useDeferredValue,
  useEffect,
  useMemo,
  useState,
  type ReactNode,
} from 'react';
import { useSearchParams, Link as RouterLink } from 'react-router-dom';
import { Link } from '@mui/material';
import { paths } from '@/config/paths';
import '@/components/controls.css';
import './governance.css';
import { EmptyState } from '@/components/EmptyState';
import { ErrorAlert } from '@/components/ErrorAlert';
import { TableSkeleton } from '@/components/Skeletons';
import { statusLabel } from '@/components/StatusChip';
import { fmtInt } from '@/lib/format';
import {
  sortKeys,
  statuses,
  useGovernanceLive,
  useStatusSummary,
  type Barrier,
  type BudgetStatus,
  type GovernanceStatus,
  type SortKey,
  type StatusView,
} from '../api/status';
import { readParams, writeParams, type ViewParams } from './filters';
import { RoleMatrix } from './RoleMatrix';
import { StatusTable } from './StatusTable';

const sortLabels: Record<SortKey, string> = {
  name: 'Tenant / project',
  utilisation: 'Utilisation',
  used: 'Used',
  reserved: 'Reserved',
  available: 'Available',
  limit: 'Limit',
};

const directions = [
  ['asc', 'Ascending', '↑'],
  ['desc', 'Descending', '↓'],
] as const;

/** The search the server runs: the text as typed, once typing pauses for a moment. */
function useSettled(text: string, ms = 250): string {
  const [settled, setSettled] = useState(text);
  useEffect(() => {
    const t = setTimeout(() => setSettled(text), ms);
    return () => clearTimeout(t);
  }, [text, ms]);
  return settled;
}

export default function GovernancePage() {
  const [params, setParams] = useSearchParams();
  const view = readParams(params);
  const q = useSettled(view.q);
  const { status: st, sort, dir } = view;
  const asked: StatusView = useMemo(() => ({ q, status: st, sort, dir }), [q, st, sort, dir]);
  const barrier = useGovernanceLive();
  // A new function when the URL changes (setParams's updater sees the URL of its render, not
  // the latest), so the memoised parts below always hold the current one.
  const set = useCallback(
    (patch: Partial<ViewParams>) =>
      setParams((p) => writeParams({ ...readParams(p), ...patch }), { replace: true }),
    [setParams],
  );
  const onStatus = useCallback((status?: BudgetStatus) => set({ status }), [set]);
  const filtered = !!(view.q || view.status);

  // Plain elements styled by components/controls.css (as the shell by index.html), not MUI
  // components: the page's first render inserts no emotion style (docs/frontend.md,
  // "Performance").
  return (
    <div className="stack-3">
      <h1 className="page-title">Governance</h1>
      <section className="card">
        <Results
          asked={asked}
          barrier={barrier}
          filtered={filtered}
          onStatus={onStatus}
          filters={<Filters q={view.q} status={st} sort={sort} dir={dir} set={set} />}
        />
      </section>
      <section className="card">
        <h2 className="section-title gutter">Roles and permissions</h2>
        <RoleMatrix />
      </section>
    </div>
  );
}

/**
 * The counts, the filters (given) and the table of a view. An answer re-renders this at once
 * with the values shown (its parts are memoised: nothing happens), then the new values render
 * as a transition, in slices, instead of one long task.
 */
function Results({
  asked,
  barrier,
  filtered,
  onStatus,
  filters,
}: {
  asked: StatusView;
  barrier: Barrier;
  filtered: boolean;
  onStatus: (status: BudgetStatus | undefined) => void;
  filters: ReactNode;
}) {
  const first = useStatusSummary(asked, barrier);
  const summary = useDeferredValue(first.data);
  // The placeholder until `summary` has the answer: `first.data` has it one render earlier,
  // and that render showed the error box instead (two layout shifts of the card below).
  const pending = !summary && !first.isError;
  return (
    <div className="stack-2">
      <h2 className="section-title">Budgets per tenant and project</h2>
      <Counts summary={summary} status={asked.status} onStatus={onStatus} />
      {filters}
      <Rows
        summary={summary}
        pending={pending}
        error={first.error}
        asked={asked}
        barrier={barrier}
        filtered={filtered}
      />
    </div>
  );
}

const Counts = memo(function Counts({
  summary,
  status,
  onStatus,
}: {
  summary: GovernanceStatus | undefined;
  status: BudgetStatus | undefined;
  onStatus: (status: BudgetStatus | undefined) => void;
}) {
  // Toggle buttons that look like MUI's clickable chips (controls.css), and two links.
  return (
    <div className="chips" role="group" aria-label="Budgets per status">
      {statuses.map((s) => (
        <button
          key={s}
          type="button"
          className="count-chip"
          onClick={() => onStatus(status === s ? undefined : s)}
          aria-pressed={status === s}
        >
          {`${statusLabel(s)}: ${summary ? fmtInt(summary.counts[s]) : '–'}`}
        </button>
      ))}
      {summary && summary.open_breakers.length > 0 && (
        <RouterLink className="count-chip error" to={paths.breakers}>
          {`Open breakers: ${summary.open_breakers.map((b) => b.name).join(', ')}`}
        </RouterLink>
      )}
      {summary && summary.open_dlq_entries > 0 && (
        <RouterLink className="count-chip warning" to={paths.dlq}>
          {`Open dead letters: ${fmtInt(summary.open_dlq_entries)}`}
        </RouterLink>
      )}
    </div>
  );
});

const Filters = memo(function Filters({
  q,
  status,
  sort,
  dir,
  set,
}: {
  q: string;
  status: BudgetStatus | undefined;
  sort: SortKey;
  dir: 'asc' | 'desc';
  set: (patch: Partial<ViewParams>) => void;
}) {
  // Native inputs and selects in MUI's outlined look (controls.css): no MUI menu, popover
  // and modal before the first use (a phone shows its own picker), and no emotion style.
  return (
    <div className="filters governance-filters">
      <label className="field">
        <span>Search tenant or project</span>
        <input type="search" value={q} onChange={(e) => set({ q: e.target.value })} />
      </label>
      <label className="field select">
        <span>Status</span>
        <select
          value={status ?? ''}
          onChange={(e) =>
            set({ status: (e.target.value || undefined) as BudgetStatus | undefined })
          }
        >
          <option value="">Any</option>
          {statuses.map((s) => (
            <option key={s} value={s}>
              {statusLabel(s)}
            </option>
          ))}
        </select>
      </label>
      <label className="field select">
        <span>Sort by</span>
        <select value={sort} onChange={(e) => set({ sort: e.target.value as SortKey })}>
          {sortKeys.map((k) => (
            <option key={k} value={k}>
              {sortLabels[k]}
            </option>
          ))}
        </select>
      </label>
      <div className="toggle-group" role="group" aria-label="Sort direction">
        {directions.map(([d, label, arrow]) => (
          <button
            key={d}
            type="button"
            aria-label={label}
            aria-pressed={dir === d}
            onClick={() => set({ dir: d })}
          >
            {arrow}
          </button>
        ))}
      </div>
    </div>
  );
});

const Rows = memo(function Rows({
  summary,
  pending,
  error,
  asked,
  barrier,
  filtered,
}: {
  summary: GovernanceStatus | undefined;
  pending: boolean;
  error: unknown;
  asked: StatusView;
  barrier: Barrier;
  filtered: boolean;
}) {
  const { q, status: st, sort, dir } = asked;
  // A new view starts at its top.
  const viewKey = `${q}|${st ?? ''}|${sort}|${dir}`;
  return (
    <>
      {pending ? (
        // The table's own height: the card below does not move when the rows arrive.
        <div className="governance-pending">
          <TableSkeleton />
        </div>
      ) : !summary ? (
        <ErrorAlert error={error} what="the budget status" />
      ) : summary.matching === 0 ? (
        <EmptyState title={filtered ? 'No budget matches this view' : 'No budgets yet'}>
          {filtered ? (
            <Link component={RouterLink} to={paths.governance}>
              Clear the filters
            </Link>
          ) : (
            'A budget appears here once a limit is set or a reservation is asked for.'
          )}
        </EmptyState>
      ) : (
        <>
          <p className="muted" role="status">
            {fmtInt(summary.matching)} {summary.matching === 1 ? 'budget' : 'budgets'}
            {filtered ? ' match this view' : ''} · warning from {summary.warning_threshold_percent}%
            of the limit
          </p>
          <StatusTable
            key={viewKey}
            view={asked}
            count={summary.matching}
            warning={summary.warning_threshold_percent}
            barrier={barrier}
          />
        </>
      )}
    </>
  );
});
