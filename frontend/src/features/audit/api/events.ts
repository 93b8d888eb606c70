import { infiniteQueryOptions, useInfiniteQuery, useQuery } from '@tanstack/react-query';
import { request, type Query } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import { ReadMark } from '@/lib/live/readMark';
import { auditKeys, type AuditFilter } from './keys';

export type AuditEvent = Schemas['EventEnvelope'];
export type EventsPage = Schemas['EventsPage'];

/**
 * What the list keeps of an event: the fields a row shows. 100,000 events kept whole (payload
 * and metadata) held ~60 MB of heap while the Audit log scrolled, and the collector's pauses
 * grow with what it keeps (a major collection's last step took 10 ms at 10 MB, 40 ms at
 * 60 MB); the event dialog reads the whole event by its position.
 */
export interface AuditRow {
  global_position: number;
  recorded_at: string;
  aggregate_type: string;
  aggregate_id: string;
  event_type: string;
  /** `metadata.user`: who caused it, when a person did. */
  actor: string | null;
}

/** A page of the list: `EventsPage` with its events as rows. */
export type AuditRowsPage = Omit<EventsPage, 'events'> & { events: AuditRow[] };

export const auditRow = (e: AuditEvent): AuditRow => {
  const user = (e.metadata as Record<string, unknown>).user;
  return {
    global_position: e.global_position,
    recorded_at: e.recorded_at,
    aggregate_type: e.aggregate_type,
    aggregate_id: e.aggregate_id,
    event_type: e.event_type,
    actor: typeof user === 'string' ? user : null,
  };
};

export const AUDIT_PAGE = 500;
/**
 * The first page is smaller: it is read before the page's first paint (the entry script's
 * early read), and 500 events are ~380 KB of JSON that a slow phone waits for; 100 fill
 * several screens, and scrolling reads the rest a page of `AUDIT_PAGE` at a time.
 */
export const AUDIT_FIRST_PAGE = 100;

/**
 * Where the list's reads stand in commit order (each page answers `read_position`): the live
 * tail subscribes to `audit` from there, so an event the list cannot show yet (a lower position
 * whose transaction commits after the read) arrives on the socket.
 */
export const auditReads = new ReadMark();

/** `GET /audit/events`: a page of matching events in log order, after a position, as rows. */
export const fetchAuditPage = (
  f: AuditFilter,
  after: number,
  signal?: AbortSignal,
  limit = AUDIT_PAGE,
): Promise<AuditRowsPage> =>
  auditReads.read(
    async () => {
      const page = await request<EventsPage>('/audit/events', {
        query: { ...f, after_position: after || undefined, limit },
        signal,
      });
      return { ...page, events: page.events.map(auditRow) };
    },
    auditKeys.events(f),
    after,
  );

/** The log under a filter, paged by position on the server. */
export const auditEventsQuery = (f: AuditFilter) =>
  infiniteQueryOptions({
    queryKey: auditKeys.events(f),
    queryFn: ({ pageParam, signal }) =>
      fetchAuditPage(f, pageParam, signal, pageParam === 0 ? AUDIT_FIRST_PAGE : AUDIT_PAGE),
    initialPageParam: 0,
    getNextPageParam: (last: AuditRowsPage) => last.next_after_position ?? undefined,
  });

export const useAuditEvents = (f: AuditFilter) => useInfiniteQuery(auditEventsQuery(f));

/** One whole event: the first that `query` finds (`null`: none). */
const readEvent = (query: Query, signal: AbortSignal) =>
  request<EventsPage>('/audit/events', { query: { ...query, limit: 1 }, signal }).then(
    (p) => p.events[0] ?? null,
  );

/** The event at `position`, whole (`null`: there is none). */
export const useAuditEvent = (position: number) =>
  useQuery({
    queryKey: auditKeys.event(position),
    queryFn: ({ signal }) =>
      readEvent({ after_position: position - 1 || undefined }, signal).then((e) =>
        e?.global_position === position ? e : null,
      ),
  });

/** The event before `e` in its aggregate's chain (its hash is `e`'s previous hash). */
export const usePreviousEvent = (e: AuditEvent | undefined) =>
  useQuery({
    queryKey: auditKeys.previous(e?.aggregate_type ?? '', e?.aggregate_id ?? '', e?.sequence ?? 0),
    queryFn: ({ signal }) =>
      readEvent(
        {
          aggregate_type: e!.aggregate_type,
          aggregate_id: e!.aggregate_id,
          sequence: e!.sequence - 1,
        },
        signal,
      ),
    enabled: !!e && e.sequence > 1,
  });
