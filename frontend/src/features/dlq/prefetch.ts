import type { QueryClient } from '@tanstack/react-query';
import { dlqGroupsQuery } from './api/groups';
import { dlqListQuery } from './api/list';
import { readDlqParams, serverFilter } from './components/filters';

/**
 * Asks for what the Dead letters page at `search` shows first (its list's first page, or the
 * groups), with the page's own query keys, before the page's chunk has loaded: the page then
 * renders with its data or joins the request in flight.
 */
export function prefetchDlqPage(qc: QueryClient, search: URLSearchParams): Promise<void> {
  const view = readDlqParams(search);
  const filter = serverFilter(view);
  return view.view === 'groups'
    ? qc.prefetchQuery(dlqGroupsQuery(filter))
    : qc.prefetchInfiniteQuery(dlqListQuery(filter));
}
