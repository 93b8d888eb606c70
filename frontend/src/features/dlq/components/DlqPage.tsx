import { lazy, memo, Suspense, useCallback, useEffect, useMemo, useState } from 'react';
import { useSearchParams } from 'react-router-dom';
import {
  Box,
  Button,
  FormControl,
  InputLabel,
  MenuItem,
  Paper,
  Select,
  Stack,
  Tab,
  Tabs,
  TextField,
  Typography,
} from '@mui/material';
import { EmptyState } from '@/components/EmptyState';
import { ErrorAlert } from '@/components/ErrorAlert';
import { PermissionButton } from '@/components/PermissionButton';
import { TableSkeleton } from '@/components/Skeletons';
import { fmtInt } from '@/lib/format';
import { perm } from '@/lib/permissions';
import { useDlqGroups, type DlqGroup } from '../api/groups';
import { useDlqList } from '../api/list';
import { useDlqLive } from '../api/live';
import type { RedriveFilter } from '../api/redrive';
import { EntryTable } from './EntryTable';
import {
  readDlqParams,
  serverFilter,
  writeDlqParams,
  type DlqParams,
  type DlqStatus,
} from './filters';
import { GroupsTable } from './GroupsTable';

// What the page shows on demand (an entry, a redrive and its progress) loads apart from the
// list: the first rows wait for fewer chunks (10 instead of 16: no dialogs, zod, toggle
// buttons, progress bars), and the rest loads once the page is up.
const loadEntryDialog = () => import('./EntryDialog').then((m) => ({ default: m.EntryDialog }));
const loadRedriveDialog = () =>
  import('./RedriveDialog').then((m) => ({ default: m.RedriveDialog }));
const loadRedriveProgress = () =>
  import('./RedriveProgress').then((m) => ({ default: m.RedriveProgress }));
const EntryDialog = lazy(loadEntryDialog);
const RedriveDialog = lazy(loadRedriveDialog);
const RedriveProgress = lazy(loadRedriveProgress);

interface RedriveAsk {
  filter: RedriveFilter;
  what: string;
  count: number;
}

type Setter = (p: Partial<DlqParams>) => void;

// The tabs and the filter form are memoised: a page of rows arriving while the reader scrolls
// re-renders the page, and MUI's Tabs measure themselves on every render (a forced layout),
// the text fields and the select are many components each.
const ViewTabs = memo(function ViewTabs({ value, set }: { value: DlqParams['view']; set: Setter }) {
  return (
    <Tabs
      value={value}
      onChange={(_, v: DlqParams['view']) => set({ view: v })}
      aria-label="Dead-letter views"
    >
      <Tab value="entries" label="Entries" />
      <Tab value="groups" label="Grouped by failure" />
    </Tabs>
  );
});

const Filters = memo(function Filters({ view, set }: { view: DlqParams; set: Setter }) {
  // The text fields apply on submit (Enter or the button): one server read per search.
  return (
    <Box
      component="form"
      key={`${view.subject}|${view.error}|${view.since}|${view.until}`}
      aria-label="Filter dead letters"
      onSubmit={(e) => {
        e.preventDefault();
        const f = new FormData(e.currentTarget);
        set({
          subject: String(f.get('subject') ?? ''),
          error: String(f.get('error') ?? ''),
          since: String(f.get('since') ?? ''),
          until: String(f.get('until') ?? ''),
        });
      }}
      sx={{
        display: 'grid',
        gap: 1.5,
        gridTemplateColumns: { xs: '1fr', sm: '1fr 1fr', lg: '1.2fr 1.5fr 1fr 1fr 150px auto' },
        alignItems: 'center',
      }}
    >
      <TextField name="subject" label="Subject (exact)" size="small" defaultValue={view.subject} />
      <TextField name="error" label="Error contains" size="small" defaultValue={view.error} />
      <TextField
        name="since"
        label="Captured from"
        type="datetime-local"
        size="small"
        defaultValue={view.since}
        slotProps={{ inputLabel: { shrink: true } }}
      />
      <TextField
        name="until"
        label="Captured until"
        type="datetime-local"
        size="small"
        defaultValue={view.until}
        slotProps={{ inputLabel: { shrink: true } }}
      />
      <FormControl size="small">
        <InputLabel id="dlq-status">State</InputLabel>
        <Select
          labelId="dlq-status"
          label="State"
          value={view.status}
          onChange={(e) => set({ status: e.target.value as DlqStatus })}
          disabled={view.view === 'groups'}
        >
          <MenuItem value="open">Open</MenuItem>
          <MenuItem value="resolved">Resolved</MenuItem>
          <MenuItem value="all">All</MenuItem>
        </Select>
      </FormControl>
      <Button type="submit" variant="outlined">
        Search
      </Button>
    </Box>
  );
});

export default function DlqPage() {
  const [params, setParams] = useSearchParams();
  // One object per URL (`params` changes with it), so that the memoised parts keep theirs.
  const view = useMemo(() => readDlqParams(params), [params]);
  const set = useCallback(
    (patch: Partial<DlqParams>) =>
      setParams((p) => writeDlqParams({ ...readDlqParams(p), ...patch }), { replace: true }),
    [setParams],
  );
  useDlqLive();
  useEffect(() => {
    // Ready before the first click, after the page's own work.
    const t = setTimeout(() => {
      for (const load of [loadEntryDialog, loadRedriveDialog, loadRedriveProgress])
        void load().catch(() => {});
    }, 1000);
    return () => clearTimeout(t);
  }, []);
  const filter = useMemo(
    () => serverFilter(view),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [view.status, view.subject, view.error, view.since, view.until],
  );
  const groupsView = view.view === 'groups';
  // The grouped view shows the groups only: the list's first page is not fetched for it.
  const list = useDlqList(filter, !groupsView);
  const groups = useDlqGroups(filter, groupsView);
  const rows = useMemo(() => list.data?.pages.flatMap((p) => p.items) ?? [], [list.data]);
  const total = list.data?.pages[0]?.total ?? 0;
  const [redrive, setRedrive] = useState<RedriveAsk | null>(null);
  const { hasNextPage, isFetchingNextPage, fetchNextPage } = list;
  const loadMore = useCallback(() => {
    if (hasNextPage && !isFetchingNextPage) void fetchNextPage();
  }, [hasNextPage, isFetchingNextPage, fetchNextPage]);

  // Redrive takes the list's filter (open entries captured up to the job's start at the latest).
  const redriveFilter: RedriveFilter = {
    subject: filter.subject,
    error_contains: filter.error_contains,
    since: filter.since,
    until: filter.until,
  };
  const redriveBlocked =
    view.status !== 'open'
      ? 'Redrive moves open entries: show the open ones to redrive them'
      : total === 0
        ? 'Nothing to redrive'
        : undefined;
  const filtered = !!(view.subject || view.error || view.since || view.until);
  const showGroup = (g: DlqGroup) =>
    set({ view: 'entries', status: 'open', subject: g.original_subject, error: g.error });

  return (
    <Stack spacing={3}>
      <Typography variant="h4" component="h1">
        Dead letters
      </Typography>
      {view.job && (
        <Suspense fallback={<TableSkeleton rows={2} />}>
          <RedriveProgress
            id={view.job}
            onDismiss={() => set({ job: undefined })}
            onOpenEntry={(id) => set({ entry: id })}
          />
        </Suspense>
      )}
      <Paper sx={{ p: { xs: 1.5, sm: 2 } }}>
        <Stack spacing={2}>
          <ViewTabs value={view.view} set={set} />
          <Filters view={view} set={set} />
          {groupsView ? (
            groups.isPending ? (
              <TableSkeleton />
            ) : groups.isError ? (
              <ErrorAlert error={groups.error} what="the groups" />
            ) : groups.data.groups.length === 0 ? (
              <EmptyState title="No open dead letters">
                {filtered ? 'None match these filters.' : 'Nothing has failed for good.'}
              </EmptyState>
            ) : (
              <GroupsTable
                groups={groups.data.groups}
                total={groups.data.total}
                onShow={showGroup}
                onRedrive={(g) =>
                  setRedrive({
                    filter: {
                      subject: g.original_subject,
                      error_contains: g.error,
                      since: filter.since,
                    },
                    what: `the group ${g.original_subject}`,
                    count: g.count,
                  })
                }
              />
            )
          ) : list.isPending ? (
            <TableSkeleton />
          ) : list.isError ? (
            <ErrorAlert error={list.error} what="the dead letters" />
          ) : (
            <>
              <Stack
                direction={{ xs: 'column', sm: 'row' }}
                spacing={1}
                sx={{ alignItems: { sm: 'center' }, justifyContent: 'space-between' }}
              >
                <Typography variant="body2" color="text.secondary" role="status">
                  {fmtInt(total)} {view.status === 'all' ? '' : `${view.status} `}
                  {total === 1 ? 'entry' : 'entries'}
                  {rows.length < total ? ` (${fmtInt(rows.length)} loaded)` : ''}
                </Typography>
                <span title={redriveBlocked}>
                  <PermissionButton
                    permission={perm.writeDlq}
                    variant="contained"
                    disabled={!!redriveBlocked}
                    onClick={() =>
                      setRedrive({
                        filter: redriveFilter,
                        what: filtered ? 'the filtered entries' : 'every open entry',
                        count: total,
                      })
                    }
                  >
                    Redrive {fmtInt(total)}…
                  </PermissionButton>
                </span>
              </Stack>
              {rows.length === 0 ? (
                <EmptyState title={filtered ? 'No entry matches' : 'No dead letters'}>
                  {filtered
                    ? 'Change or clear the filters.'
                    : 'A message that exceeds its deliveries appears here as it dies.'}
                </EmptyState>
              ) : (
                <EntryTable
                  rows={rows}
                  total={total}
                  loadMore={loadMore}
                  onOpen={(id) => set({ entry: id })}
                />
              )}
            </>
          )}
        </Stack>
      </Paper>
      <Suspense fallback={null}>
        {view.entry && <EntryDialog id={view.entry} onClose={() => set({ entry: undefined })} />}
        {redrive && (
          <RedriveDialog
            {...redrive}
            onClose={() => setRedrive(null)}
            onStarted={(job) => {
              setRedrive(null);
              set({ job: job.id });
            }}
          />
        )}
      </Suspense>
    </Stack>
  );
}
