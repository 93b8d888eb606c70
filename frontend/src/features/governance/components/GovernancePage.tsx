import { useMemo } from 'react';
import { useSearchParams, Link as RouterLink } from 'react-router-dom';
import {
  Alert,
  Box,
  Chip,
  FormControl,
  InputLabel,
  Link,
  MenuItem,
  Paper,
  Select,
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
import { statuses, useGovernanceLive, useGovernanceStatus, type BudgetStatus } from '../api/status';
import {
  applyView,
  readParams,
  sortKeys,
  writeParams,
  type SortKey,
  type ViewParams,
} from './filters';
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

export default function GovernancePage() {
  const [params, setParams] = useSearchParams();
  const view = readParams(params);
  const filter = useMemo(() => ({ status: view.status }), [view.status]);
  const status = useGovernanceStatus(filter);
  useGovernanceLive(filter);
  const set = (patch: Partial<ViewParams>) =>
    setParams(writeParams({ ...view, ...patch }), { replace: true });
  const { q, sort, dir } = view;
  const filtered = !!(q || view.status);
  const rows = useMemo(
    () => (status.data ? applyView(status.data.rows, { q, sort, dir }) : []),
    [status.data, q, sort, dir],
  );

  return (
    <Stack spacing={3}>
      <Typography variant="h4" component="h1">
        Governance
      </Typography>
      <Paper sx={{ p: { xs: 1.5, sm: 2 } }}>
        <Stack spacing={2}>
          <Typography variant="h6" component="h2">
            Budgets per tenant and project
          </Typography>
          {status.data && (
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
                  label={`${statusLabel(s)}: ${fmtInt(status.data.counts[s])}`}
                  variant={view.status === s ? 'filled' : 'outlined'}
                  color={view.status === s ? 'primary' : 'default'}
                  onClick={() => set({ status: view.status === s ? undefined : s })}
                  aria-pressed={view.status === s}
                />
              ))}
              {status.data.open_breakers.length > 0 && (
                <Chip
                  color="error"
                  component={RouterLink}
                  to={paths.breakers}
                  clickable
                  label={`Open breakers: ${status.data.open_breakers.map((b) => b.name).join(', ')}`}
                />
              )}
              {status.data.open_dlq_entries > 0 && (
                <Chip
                  color="warning"
                  component={RouterLink}
                  to={paths.dlq}
                  clickable
                  label={`Open dead letters: ${fmtInt(status.data.open_dlq_entries)}`}
                />
              )}
            </Stack>
          )}
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
              value={view.q}
              onChange={(e) => set({ q: e.target.value })}
              type="search"
            />
            <FormControl size="small">
              <InputLabel id="status-filter">Status</InputLabel>
              <Select
                labelId="status-filter"
                label="Status"
                value={view.status ?? ''}
                onChange={(e) =>
                  set({ status: (e.target.value || undefined) as BudgetStatus | undefined })
                }
              >
                <MenuItem value="">Any</MenuItem>
                {statuses.map((s) => (
                  <MenuItem key={s} value={s}>
                    {statusLabel(s)}
                  </MenuItem>
                ))}
              </Select>
            </FormControl>
            <FormControl size="small">
              <InputLabel id="sort-by">Sort by</InputLabel>
              <Select
                labelId="sort-by"
                label="Sort by"
                value={view.sort}
                onChange={(e) => set({ sort: e.target.value as SortKey })}
              >
                {sortKeys.map((k) => (
                  <MenuItem key={k} value={k}>
                    {sortLabels[k]}
                  </MenuItem>
                ))}
              </Select>
            </FormControl>
            <ToggleButtonGroup
              size="small"
              exclusive
              value={view.dir}
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
          {status.isPending ? (
            <TableSkeleton />
          ) : status.isError ? (
            <ErrorAlert error={status.error} what="the budget status" />
          ) : rows.length === 0 ? (
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
                {fmtInt(rows.length)} of {fmtInt(status.data.matching)} budgets · warning from{' '}
                {status.data.warning_threshold_percent}% of the limit
              </Typography>
              <StatusTable rows={rows} warning={status.data.warning_threshold_percent} />
            </>
          )}
        </Stack>
      </Paper>
      <Paper sx={{ p: { xs: 1.5, sm: 2 } }}>
        <Typography variant="h6" component="h2" gutterBottom>
          Roles and permissions
        </Typography>
        <RoleMatrix />
      </Paper>
      {status.data && status.data.matching > status.data.rows.length && (
        <Alert severity="info" role="status">
          Reading the list: {fmtInt(status.data.rows.length)} of {fmtInt(status.data.matching)}{' '}
          budgets so far.
        </Alert>
      )}
    </Stack>
  );
}
