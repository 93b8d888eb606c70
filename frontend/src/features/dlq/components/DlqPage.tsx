import {
  lazy,
  memo,
  Suspense,
  useCallback,
  useEffect,
  useMemo,
  useState,
  type KeyboardEvent,
} from 'react';
import { useSearchParams } from 'react-router-dom';
import '@/components/controls.css';
import './dlq.css';
import { EmptyState } from '@/components/EmptyState';
import { ErrorAlert } from '@/components/ErrorAlert';
import { PermissionButton } from '@/components/PermissionButton';
import { TableSkeleton } from '@/components/Skeletons';
import { fmtInt } from '@/lib/format';
import { pagedRows } from '@/lib/pagedRows';
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

const views: { value: DlqParams['view']; label: string }[] = [
  { value: 'entries', label: 'Entries' },
  { value: 'groups', label: 'Grouped by failure' },
];

// The tabs and the filter form are plain elements styled by components/controls.css, not MUI's
// Tabs, text fields and Select: the page's first render inserts no emotion style (MUI's Tabs
// also measured themselves on every render, a forced layout). Memoised: a page of rows arriving
// while the reader scrolls re-renders the page, not these.
const ViewTabs = memo(function ViewTabs({ value, set }: { value: DlqParams['view']; set: Setter }) {
  // The arrow keys move between the tabs (the focus; Enter, Space or a click chooses).
  const onKeyDown = (e: KeyboardEvent<HTMLDivElement>) => {
    if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight' && e.key !== 'Home' && e.key !== 'End')
      return;
    const tabs = [...e.currentTarget.querySelectorAll<HTMLButtonElement>('[role="tab"]')];
    const at = tabs.indexOf(document.activeElement as HTMLButtonElement);
    const next =
      e.key === 'Home'
        ? 0
        : e.key === 'End'
          ? tabs.length - 1
          : (at + (e.key === 'ArrowRight' ? 1 : -1) + tabs.length) % tabs.length;
    e.preventDefault();
    tabs[next]?.focus();
  };
  return (
    <div className="tabs" role="tablist" aria-label="Dead-letter views" onKeyDown={onKeyDown}>
      {views.map((v) => (
        <button
          key={v.value}
          type="button"
          role="tab"
          aria-selected={value === v.value}
          tabIndex={value === v.value ? 0 : -1}
          onClick={() => set({ view: v.value })}
        >
          {v.label}
        </button>
      ))}
    </div>
  );
});

const Filters = memo(function Filters({ view, set }: { view: DlqParams; set: Setter }) {
  // The text fields apply on submit (Enter or the button): one server read per search.
  return (
    <form
      className="filters dlq-filters"
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
    >
      <label className="field">
        <span>Subject (exact)</span>
        <input name="subject" defaultValue={view.subject} />
      </label>
      <label className="field">
        <span>Error contains</span>
        <input name="error" defaultValue={view.error} />
      </label>
      <label className="field">
        <span>Captured from</span>
        <input name="since" type="datetime-local" defaultValue={view.since} />
      </label>
      <label className="field">
        <span>Captured until</span>
        <input name="until" type="datetime-local" defaultValue={view.until} />
      </label>
      {/* A native select: no MUI menu, popover and modal before the first use. */}
      <label className="field select">
        <span>State</span>
        <select
          value={view.status}
          onChange={(e) => set({ status: e.target.value as DlqStatus })}
          disabled={view.view === 'groups'}
        >
          <option value="open">Open</option>
          <option value="resolved">Resolved</option>
          <option value="all">All</option>
        </select>
      </label>
      <button type="submit" className="outlined-btn">
        Search
      </button>
    </form>
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
  const rows = useMemo(() => pagedRows(list.data?.pages.map((p) => p.items) ?? []), [list.data]);
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
    <div className="stack-3">
      <h1 className="page-title">Dead letters</h1>
      {view.job && (
        <Suspense fallback={<TableSkeleton rows={2} />}>
          <RedriveProgress
            id={view.job}
            onDismiss={() => set({ job: undefined })}
            onOpenEntry={(id) => set({ entry: id })}
          />
        </Suspense>
      )}
      <section className="card">
        <div className="stack-2">
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
              <div className="dlq-summary">
                <p className="muted" role="status">
                  {fmtInt(total)} {view.status === 'all' ? '' : `${view.status} `}
                  {total === 1 ? 'entry' : 'entries'}
                  {rows.length < total ? ` (${fmtInt(rows.length)} loaded)` : ''}
                </p>
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
              </div>
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
        </div>
      </section>
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
    </div>
  );
}
