import { describe, expect, it } from 'vitest';
import { createQueryClient } from '@/lib/queryClient';
import { fakeFetch } from '../../test/render';
import { prefetchPageData } from './pages';

describe('first reads before the page', () => {
  it("reads the Dashboard's figures under the page's own query keys", async () => {
    const calls = fakeFetch([
      { status: 200, body: { a: 1 } },
      { status: 200, body: { b: 2 } },
      { status: 200, body: { c: 3 } },
    ]);
    const qc = createQueryClient();
    prefetchPageData(qc, '/');
    await new Promise((r) => setTimeout(r, 0));
    expect(calls.map((c) => c.url).sort()).toEqual([
      '/stats',
      '/system/health',
      '/system/pipeline',
    ]);
    await expect.poll(() => qc.getQueryData(['dashboard', 'stats'])).toBeDefined();
  });

  it('reads no list before its page subscribes to its live topic', async () => {
    const calls = fakeFetch([]);
    const qc = createQueryClient();
    for (const p of ['/dlq', '/audit', '/governance', '/budget']) prefetchPageData(qc, p);
    await new Promise((r) => setTimeout(r, 0));
    expect(calls).toEqual([]);
  });
});
