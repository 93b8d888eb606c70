import { infiniteQueryOptions, useInfiniteQuery, useQuery } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import { ReadMark } from '@/lib/live/readMark';
import { auditKeys, type AuditFilter } from './keys';

export type AuditEvent = Schemas['EventEnvelope'];
export type EventsPage = Schemas['EventsPage'];

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

/** `GET /audit/events`: a page of matching events in log order, after a position. */
export const fetchAuditPage = (
  f: AuditFilter,
  after: number,
  signal?: AbortSignal,
  limit = AUDIT_PAGE,
) =>
  auditReads.read(
    () =>
      request<EventsPage>('/audit/events', {
        query: { ...f, after_position: after || undefined, limit },
        signal,
      }),
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
    getNextPageParam: (last: EventsPage) => last.next_after_position ?? undefined,
  });

export const useAuditEvents = (f: AuditFilter) => useInfiniteQuery(auditEventsQuery(f));

/** The event before `e` in its aggregate's chain (its hash is `e`'s previous hash). */
export const usePreviousEvent = (e: AuditEvent | undefined) =>
  useQuery({
    queryKey: auditKeys.previous(e?.aggregate_type ?? '', e?.aggregate_id ?? '', e?.sequence ?? 0),
    queryFn: ({ signal }) =>
      request<EventsPage>('/audit/events', {
        query: {
          aggregate_type: e!.aggregate_type,
          aggregate_id: e!.aggregate_id,
          sequence: e!.sequence - 1,
          limit: 1,
        },
        signal,
      }).then((p) => p.events[0] ?? null),
    enabled: !!e && e.sequence > 1,
  });
