import { queryOptions, useQuery } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import { dlqKeys, dlqPosition, dlqReads, type DlqFilter } from './keys';

export type DlqGroups = Schemas['DlqGroupsResponse'];
export type DlqGroup = Schemas['DlqGroupBody'];

/** `GET /dlq/groups`: open entries grouped by subject and error, largest group first. */
export const fetchDlqGroups = (f: DlqFilter, signal?: AbortSignal) =>
  dlqReads.read(
    () =>
      request<DlqGroups>('/dlq/groups', {
        // Groups are of open entries: the list's `resolved` does not apply.
        query: {
          subject: f.subject,
          error_contains: f.error_contains,
          since: f.since,
          until: f.until,
          limit: 500,
          min_position: dlqPosition(),
        },
        signal,
      }),
    dlqKeys.groups(f),
  );

/** The groups of the filter (the page's query and its prefetch). */
export const dlqGroupsQuery = (f: DlqFilter) =>
  queryOptions({
    queryKey: dlqKeys.groups(f),
    queryFn: ({ signal }) => fetchDlqGroups(f, signal),
  });

export const useDlqGroups = (f: DlqFilter, enabled = true) =>
  useQuery({ ...dlqGroupsQuery(f), enabled });
