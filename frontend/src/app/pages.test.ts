import { describe, expect, it } from 'vitest';
import { createQueryClient } from '@/lib/queryClient';
import { fakeFetch } from '../../test/render';
import { prefetchPageData } from './pages';

describe("the Dashboard's first reads, started before its chunk", () => {
  it("reads the Dashboard's figures under the page's own query keys", async () => {
    const calls = fakeFetch([
      { status: 200, body: { a: 1 } },
      { status: 200, body: { b: 2 } },
      { status: 200, body: { c: 3 } },
    ]);
    const qc = createQueryClient();
    prefetchPageData(qc, { pathname: '/', search: '' });
    await new Promise((r) => setTimeout(r, 0));
    expect(calls.map((c) => c.url).sort()).toEqual([
      '/stats',
      '/system/health',
      '/system/pipeline',
    ]);
    await expect.poll(() => qc.getQueryData(['dashboard', 'stats'])).toBeDefined();
  });

  it('reads nothing for the pages whose lists follow live events without a read mark', async () => {
    const calls = fakeFetch([]);
    const qc = createQueryClient();
    for (const p of ['/governance', '/budget']) prefetchPageData(qc, { pathname: p, search: '' });
    await new Promise((r) => setTimeout(r, 0));
    expect(calls).toEqual([]);
  });
});
