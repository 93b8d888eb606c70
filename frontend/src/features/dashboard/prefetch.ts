import type { QueryClient } from '@tanstack/react-query';
import { healthQuery } from './api/health';
import { pipelineQuery } from './api/pipeline';
import { statsQuery } from './api/stats';

/**
 * The Dashboard's first reads, started by the entry script with the page's own query keys, so
 * that they no longer wait for the page's chunk and first render (its largest paint, the
 * dead-letter trend, waits for `/stats`). Safe to read before the page subscribes: these three
 * are read again on every `stats` frame, so an event in between cannot leave them behind (the
 * alerts, which events refresh, are not read here).
 */
export async function prefetchDashboard(qc: QueryClient): Promise<void> {
  await Promise.all([
    qc.prefetchQuery(statsQuery()),
    qc.prefetchQuery(healthQuery()),
    qc.prefetchQuery(pipelineQuery()),
  ]);
}
