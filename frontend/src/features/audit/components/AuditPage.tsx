import { memo, useCallback, useEffect, useMemo } from 'react';
import { useSearchParams } from 'react-router-dom';
import { useQueryClient } from '@tanstack/react-query';
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
import { pagedRows } from '@/lib/pagedRows';
import { keyedThrottle } from '@/lib/throttle';
import { auditReads, fetchAuditPage, useAuditEvents } from '../api/events';
import { exportUrl } from '../api/exportUrl';
import { auditKeys, type AuditFilter } from '../api/keys';
import { Delivered, mergeTailPage, settle, type AuditList } from '../api/tail';
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
 * While the tail is live, the socket's events keep the list current in commit order: the topic
 * is subscribed from where the list's reads stand (`auditReads`), so every event they could
 * not show arrives; one below the last row that the list lacks (a lower position committed
 * later) is read and put in place, and those past it read what follows the last row (api/tail.ts).
 */
function useLiveTail(filter: AuditFilter, on: boolean, pages: number) {
  const qc = useQueryClient();
  const delivered = useMemo(() => new Delivered(), []);
  const throttle = useMemo(
    () =>
      keyedThrottle<string>(300, async () => {
        const key = auditKeys.events(filter);
        // A few reads at most per pass: the next pass (the next event) goes on from there.
        for (let round = 0; round < 5; round++) {
          const list = qc.getQueryData<AuditList>(key);
          const read = list && delivered.next(list);
          if (!read) return;
          const page = await fetchAuditPage(filter, read.after);
          qc.setQueryData<AuditList>(key, (old) => (old ? mergeTailPage(old, read, page) : old));
          settle(delivered, read, page);
        }
      }),
    [qc, filter, delivered],
  );
  useEffect(() => delivered.forget(Infinity), [filter, delivered]);
  useLiveTopics(on ? ['audit'] : [], { reads: auditReads, onGap: () => throttle.push('tail') });
  useEffect(() => () => throttle.cancel(), [throttle]);
  // Paging read further: what was delivered past the old last row may be missing now.
  useEffect(() => {
    if (on && delivered.size) throttle.push('tail');
  }, [on, pages, delivered, throttle]);
  useLiveEvents((e) => {
    if (!on) return;
    delivered.add(e.position);
    throttle.push('tail');
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
  useLiveTail(filter, view.live, events.data?.pages.length ?? 0);
  const rows = useMemo(
    () => pagedRows(events.data?.pages.map((p) => p.events) ?? []),
    [events.data],
  );
  const { hasNextPage, isFetchingNextPage, fetchNextPage } = events;
  const loadMore = useCallback(() => {
    if (hasNextPage && !isFetchingNextPage) void fetchNextPage();
  }, [hasNextPage, isFetchingNextPage, fetchNextPage]);
  const openEvent = useCallback((position: number) => set({ event: position }), [set]);
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
      {view.event ? (
        <EventDialog position={view.event} onClose={() => set({ event: undefined })} />
      ) : null}
    </Stack>
  );
}
