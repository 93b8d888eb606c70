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
import {
  Box,
  Chip,
  Link,
  Paper,
  Stack,
  TextField,
  ToggleButton,
  ToggleButtonGroup,
  Typography,
} from '@mui/material';
import { paths } from '@/config/paths';
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

  return (
    <Stack spacing={3}>
      <Typography variant="h4" component="h1">
        Governance
      </Typography>
      <Paper sx={{ p: { xs: 1.5, sm: 2 } }}>
        <Results
          asked={asked}
          barrier={barrier}
          filtered={filtered}
          onStatus={onStatus}
          filters={<Filters q={view.q} status={st} sort={sort} dir={dir} set={set} />}
        />
      </Paper>
      <Paper sx={{ p: { xs: 1.5, sm: 2 } }}>
        <Typography variant="h6" component="h2" gutterBottom>
          Roles and permissions
        </Typography>
        <RoleMatrix />
      </Paper>
    </Stack>
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
    <Stack spacing={2}>
      <Typography variant="h6" component="h2">
        Budgets per tenant and project
      </Typography>
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
    </Stack>
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
  return (
    <Stack
      direction="row"
      spacing={1}
      useFlexGap
      sx={{ flexWrap: 'wrap' }}
      aria-label="Budgets per status"
    >
      {statuses.map((s) => (
        <Chip
          key={s}
          label={`${statusLabel(s)}: ${summary ? fmtInt(summary.counts[s]) : '–'}`}
          variant={status === s ? 'filled' : 'outlined'}
          color={status === s ? 'primary' : 'default'}
          onClick={() => onStatus(status === s ? undefined : s)}
          aria-pressed={status === s}
        />
      ))}
      {summary && summary.open_breakers.length > 0 && (
        <Chip
          color="error"
          component={RouterLink}
          to={paths.breakers}
          clickable
          label={`Open breakers: ${summary.open_breakers.map((b) => b.name).join(', ')}`}
        />
      )}
      {summary && summary.open_dlq_entries > 0 && (
        <Chip
          color="warning"
          component={RouterLink}
          to={paths.dlq}
          clickable
          label={`Open dead letters: ${fmtInt(summary.open_dlq_entries)}`}
        />
      )}
    </Stack>
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
  return (
    <Box
      sx={{
        display: 'grid',
        gap: 1.5,
        gridTemplateColumns: { xs: '1fr', sm: '2fr 1fr 1fr auto' },
        alignItems: 'center',
      }}
    >
      <TextField
        label="Search tenant or project"
        size="small"
        value={q}
        onChange={(e) => set({ q: e.target.value })}
        type="search"
      />
      {/* Native selects: no MUI menu, popover and modal (their code and their components)
          on the page before the first use; a phone shows its own picker. */}
      <TextField
        select
        size="small"
        label="Status"
        value={status ?? ''}
        onChange={(e) => set({ status: (e.target.value || undefined) as BudgetStatus | undefined })}
        slotProps={{ select: { native: true }, inputLabel: { shrink: true } }}
      >
        <option value="">Any</option>
        {statuses.map((s) => (
          <option key={s} value={s}>
            {statusLabel(s)}
          </option>
        ))}
      </TextField>
      <TextField
        select
        size="small"
        label="Sort by"
        value={sort}
        onChange={(e) => set({ sort: e.target.value as SortKey })}
        slotProps={{ select: { native: true }, inputLabel: { shrink: true } }}
      >
        {sortKeys.map((k) => (
          <option key={k} value={k}>
            {sortLabels[k]}
          </option>
        ))}
      </TextField>
      <ToggleButtonGroup
        size="small"
        exclusive
        value={dir}
        onChange={(_, d) => d && set({ dir: d })}
        aria-label="Sort direction"
      >
        <ToggleButton value="asc" aria-label="Ascending">
          ↑
        </ToggleButton>
        <ToggleButton value="desc" aria-label="Descending">
          ↓
        </ToggleButton>
      </ToggleButtonGroup>
    </Box>
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
        <Box sx={{ height: { xs: 'calc(60vh + 30px)', md: 'calc(65vh + 30px)' } }}>
          <TableSkeleton />
        </Box>
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
          <Typography variant="body2" color="text.secondary" role="status">
            {fmtInt(summary.matching)} {summary.matching === 1 ? 'budget' : 'budgets'}
            {filtered ? ' match this view' : ''} · warning from {summary.warning_threshold_percent}%
            of the limit
          </Typography>
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
