import { memo, useCallback, useEffect, useMemo } from 'react';
import { useSearchParams } from 'react-router-dom';
import { useQueryClient, type InfiniteData } from '@tanstack/react-query';
import {
  Box,
  Button,
  FormControlLabel,
  Paper,
  Stack,
  Switch,
  TextField,
  Typography,
} from '@mui/material';
import { EmptyState } from '@/components/EmptyState';
import { ErrorAlert } from '@/components/ErrorAlert';
import { TableSkeleton } from '@/components/Skeletons';
import { useLiveEvents, useLiveTopics } from '@/lib/live/LiveProvider';
import { fmtInt } from '@/lib/format';
import { keyedThrottle } from '@/lib/throttle';
import { fetchAuditPage, useAuditEvents, type EventsPage } from '../api/events';
import { exportUrl } from '../api/exportUrl';
import { auditKeys, type AuditFilter } from '../api/keys';
import { EventDialog } from './EventDialog';
import { EventTable } from './EventTable';
import { auditFilter, readAuditParams, writeAuditParams, type AuditParams } from './filters';
import { VerifyPanel } from './VerifyPanel';

const fields: [keyof AuditParams, string, string?][] = [
  ['aggregate_type', 'Aggregate type'],
  ['aggregate_id', 'Aggregate id'],
  ['event_type', 'Event type'],
  ['actor', 'Actor (user)'],
  ['from', 'Recorded from', 'datetime-local'],
  ['to', 'Recorded before', 'datetime-local'],
];

/**
 * While the tail is live, events on the socket fetch what follows the last row loaded; so does
 * the subscription itself once it stands (what was committed after the list was read and
 * before the tail was subscribed is fetched then: the list may have been read long before,
 * and a replay of every event since would cost more than that one read).
 */
function useLiveTail(filter: AuditFilter, on: boolean) {
  const qc = useQueryClient();
  const throttle = useMemo(
    () =>
      keyedThrottle<string>(300, async () => {
        const key = auditKeys.events(filter);
        const data = qc.getQueryData<InfiniteData<EventsPage, number>>(key);
        const last = data?.pages[data.pages.length - 1];
        if (!data || !last || last.next_after_position) return; // not at the end: paging goes on
        const after = data.pages.flatMap((p) => p.events).at(-1)?.global_position ?? 0;
        const page = await fetchAuditPage(filter, after);
        if (!page.events.length) return;
        qc.setQueryData<InfiniteData<EventsPage, number>>(key, (old) =>
          old ? { pages: [...old.pages, page], pageParams: [...old.pageParams, after] } : old,
        );
      }),
    [qc, filter],
  );
  useLiveTopics(on ? ['audit'] : [], { from: null, onGap: () => throttle.push('tail') });
  useEffect(() => () => throttle.cancel(), [throttle]);
  useLiveEvents(() => {
    if (on) throttle.push('tail');
  });
}

type Setter = (patch: Partial<AuditParams>) => void;

// The search form is memoised (as the Dead letters page's tabs and filters): with the live tail
// on, every page of events appended re-renders the page, and the form's six text fields, the
// switch and the buttons are many MUI components each. It renders when the URL changes.
const SearchForm = memo(function SearchForm({
  view,
  filter,
  set,
}: {
  view: AuditParams;
  filter: AuditFilter;
  set: Setter;
}) {
  return (
    <Box
      component="form"
      aria-label="Search the audit log"
      key={fields.map(([k]) => view[k]).join('|')}
      onSubmit={(e) => {
        e.preventDefault();
        const f = new FormData(e.currentTarget);
        const patch: Partial<AuditParams> = {};
        for (const [k] of fields) (patch as Record<string, string>)[k] = String(f.get(k) ?? '');
        set(patch);
      }}
      sx={{
        display: 'grid',
        gap: 1.5,
        gridTemplateColumns: { xs: '1fr', sm: '1fr 1fr', lg: 'repeat(3, 1fr)' },
      }}
    >
      {fields.map(([k, label, type]) => (
        <TextField
          key={k}
          name={k}
          label={label}
          size="small"
          type={type}
          defaultValue={view[k] as string}
          slotProps={type ? { inputLabel: { shrink: true } } : undefined}
        />
      ))}
      <Stack direction="row" spacing={1} sx={{ alignItems: 'center', flexWrap: 'wrap' }}>
        <Button type="submit" variant="contained">
          Search
        </Button>
        <Button component="a" href={exportUrl(filter)} download="audit.ndjson" variant="outlined">
          Export NDJSON
        </Button>
        <FormControlLabel
          control={<Switch checked={view.live} onChange={(e) => set({ live: e.target.checked })} />}
          label="Live tail"
        />
      </Stack>
    </Box>
  );
});

// Nothing of the page's changes it: a live event or a page of rows does not render it again.
const Verification = memo(function Verification() {
  return (
    <Paper sx={{ p: { xs: 1.5, sm: 2 } }}>
      <Typography variant="h6" component="h2" gutterBottom>
        Verification
      </Typography>
      <VerifyPanel />
    </Paper>
  );
});

export default function AuditPage() {
  const [params, setParams] = useSearchParams();
  // One object per URL (`params` changes with it), so that the memoised form keeps its own.
  const view = useMemo(() => readAuditParams(params), [params]);
  const set = useCallback(
    (patch: Partial<AuditParams>) =>
      setParams((p) => writeAuditParams({ ...readAuditParams(p), ...patch }), { replace: true }),
    [setParams],
  );
  const filter = useMemo(
    () => auditFilter(view),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [view.aggregate_type, view.aggregate_id, view.event_type, view.actor, view.from, view.to],
  );
  const events = useAuditEvents(filter);
  useLiveTail(filter, view.live);
  const rows = useMemo(() => events.data?.pages.flatMap((p) => p.events) ?? [], [events.data]);
  const { hasNextPage, isFetchingNextPage, fetchNextPage } = events;
  const loadMore = useCallback(() => {
    if (hasNextPage && !isFetchingNextPage) void fetchNextPage();
  }, [hasNextPage, isFetchingNextPage, fetchNextPage]);
  const openEvent = useCallback((position: number) => set({ event: position }), [set]);
  const open = view.event ? rows.find((e) => e.global_position === view.event) : undefined;
  const filtered = Object.values(filter).some(Boolean);

  return (
    <Stack spacing={3}>
      <Typography variant="h4" component="h1">
        Audit log
      </Typography>
      <Paper sx={{ p: { xs: 1.5, sm: 2 } }}>
        <Stack spacing={2}>
          <SearchForm view={view} filter={filter} set={set} />
          {events.isPending ? (
            <TableSkeleton />
          ) : events.isError ? (
            <ErrorAlert error={events.error} what="the audit log" />
          ) : rows.length === 0 ? (
            <EmptyState title={filtered ? 'No event matches' : 'The log is empty'} />
          ) : (
            <>
              <Typography variant="body2" color="text.secondary" role="status">
                {fmtInt(rows.length)} events loaded{hasNextPage ? ', more as you scroll' : ''}
                {view.live ? ' · live' : ''}
              </Typography>
              <EventTable rows={rows} loadMore={loadMore} follow={view.live} onOpen={openEvent} />
            </>
          )}
        </Stack>
      </Paper>
      <Verification />
      {open && <EventDialog event={open} onClose={() => set({ event: undefined })} />}
    </Stack>
  );
}
