import { describe, expect, it } from 'vitest';
import { renderHook, waitFor } from '@testing-library/react';
import type { ReactNode } from 'react';
import { QueryClientProvider } from '@tanstack/react-query';
import { createQueryClient } from '@/lib/queryClient';
import { useDlqGroups } from '@/features/dlq/api/groups';
import { useDlqList } from '@/features/dlq/api/list';
import { readDlqParams, serverFilter } from '@/features/dlq/components/filters';
import { useAuditEvents } from '@/features/audit/api/events';
import { auditFilter, readAuditParams } from '@/features/audit/components/filters';
import { dlqReads } from '@/features/dlq/api/keys';
import { fakeFetch } from '../../test/render';
import { prefetchPageData } from './pages';

const listAnswer = { status: 200, body: { items: [], total: 0 } };

/** The prefetch, then the page's own query on the same cache: one request in all. */
async function prefetchThenRender<T>(
  location: { pathname: string; search: string },
  answer: { status: number; body: unknown },
  usePageQuery: (search: URLSearchParams) => { isSuccess: boolean; data?: T },
) {
  const calls = fakeFetch([answer]);
  const qc = createQueryClient();
  prefetchPageData(qc, location);
  expect(calls).toHaveLength(1); // sent at once, before any render
  const wrapper = ({ children }: { children: ReactNode }) => (
    <QueryClientProvider client={qc}>{children}</QueryClientProvider>
  );
  const { result } = renderHook(() => usePageQuery(new URLSearchParams(location.search)), {
    wrapper,
  });
  await waitFor(() => expect(result.current.isSuccess).toBe(true));
  expect(calls).toHaveLength(1);
  return new URL(calls[0]!.url, 'http://x');
}

describe('the first read of a page, started before its chunk', () => {
  it("Dead letters: the list of the URL's filter, under the page's own query key", async () => {
    const url = await prefetchThenRender(
      { pathname: '/dlq', search: '?status=resolved&subject=orders.created' },
      listAnswer,
      (s) => useDlqList(serverFilter(readDlqParams(s))),
    );
    expect(url.pathname).toBe('/dlq');
    expect(url.searchParams.get('resolved')).toBe('true');
    expect(url.searchParams.get('subject')).toBe('orders.created');
    expect(url.searchParams.get('offset')).toBe('0');
    // Read before the socket stood anywhere: the page's subscription cannot replay from it,
    // so the page reads again once subscribed (lib/live/client.ts, `onGap`).
    expect(dlqReads.watch()).toBeNull();
    dlqReads.unwatch();
  });

  it('Dead letters grouped: the groups, not the list', async () => {
    const url = await prefetchThenRender(
      { pathname: '/dlq', search: '?view=groups' },
      { status: 200, body: { groups: [], total: 0 } },
      (s) => useDlqGroups(serverFilter(readDlqParams(s))),
    );
    expect(url.pathname).toBe('/dlq/groups');
  });

  it('Audit log: the first page of the search', async () => {
    const url = await prefetchThenRender(
      { pathname: '/audit', search: '?aggregate_type=DlqEntry' },
      { status: 200, body: { events: [], next_after_position: null } },
      (s) => useAuditEvents(auditFilter(readAuditParams(s))),
    );
    expect(url.pathname).toBe('/audit/events');
    expect(url.searchParams.get('aggregate_type')).toBe('DlqEntry');
  });

  it('other pages read nothing ahead', () => {
    const calls = fakeFetch([]);
    prefetchPageData(createQueryClient(), { pathname: '/governance', search: '' });
    prefetchPageData(createQueryClient(), { pathname: '/dlqx', search: '' });
    expect(calls).toHaveLength(0);
  });
});
