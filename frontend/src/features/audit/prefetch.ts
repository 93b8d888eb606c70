import type { QueryClient } from '@tanstack/react-query';
import { prepareTimeFormat } from '@/lib/format';
import { auditEventsQuery } from './api/events';
import { auditFilter, readAuditParams } from './components/filters';

/**
 * Asks for the first page of the Audit log at `search`, with the page's own query key, before
 * the page's chunk has loaded (see the Dead letters page's prefetch).
 */
export function prefetchAuditPage(qc: QueryClient, search: URLSearchParams): Promise<void> {
  prepareTimeFormat();
  return qc.prefetchInfiniteQuery(auditEventsQuery(auditFilter(readAuditParams(search))));
}
