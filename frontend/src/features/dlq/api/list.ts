import { infiniteQueryOptions, useInfiniteQuery } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import { dlqKeys, dlqPosition, dlqReads, type DlqFilter } from './keys';

export type DlqList = Schemas['DlqListResponse'];
export type DlqEntry = Schemas['EntryBody'];

/** Entries per request; the table asks for the next page as the reader nears the end. */
export const DLQ_PAGE = 200;

/** `GET /dlq`: one page of entries, oldest first, and how many match. */
export const fetchDlqPage = (f: DlqFilter, offset: number, signal?: AbortSignal) =>
  dlqReads.read(
    () =>
      request<DlqList>('/dlq', {
        query: { ...f, limit: DLQ_PAGE, offset, min_position: dlqPosition() },
        signal,
      }),
    dlqKeys.list(f),
    offset,
  );

/** The filtered list, paged on the server by offset (the page's query and its prefetch). */
export const dlqListQuery = (f: DlqFilter) =>
  infiniteQueryOptions({
    queryKey: dlqKeys.list(f),
    queryFn: ({ pageParam, signal }) => fetchDlqPage(f, pageParam, signal),
    initialPageParam: 0,
    getNextPageParam: (last, pages) => {
      const loaded = pages.reduce((n, p) => n + p.items.length, 0);
      return last.items.length > 0 && loaded < last.total ? loaded : undefined;
    },
  });

/** The filtered list (not read while `enabled` is false). */
export const useDlqList = (f: DlqFilter, enabled = true) =>
  useInfiniteQuery({ ...dlqListQuery(f), enabled });
