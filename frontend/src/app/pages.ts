import { lazy, type ComponentType } from 'react';
import type { QueryClient } from '@tanstack/react-query';
import { paths } from '@/config/paths';
import { prefetchAuditPage } from '@/features/audit/prefetch';
import { prefetchDashboard } from '@/features/dashboard/prefetch';
import { prefetchDlqPage } from '@/features/dlq/prefetch';

// Each page is its own chunk: charts and tables load with the route that shows them.
type Loader = () => Promise<{ default: ComponentType }>;

const loaders: Record<string, Loader> = {
  [paths.dashboard]: () => import('@/features/dashboard/components/DashboardPage'),
  [paths.governance]: () => import('@/features/governance/components/GovernancePage'),
  [paths.budget]: () => import('@/features/budget/components/BudgetPage'),
  [paths.dlq]: () => import('@/features/dlq/components/DlqPage'),
  [paths.breakers]: () => import('@/features/breakers/components/BreakersPage'),
  [paths.audit]: () => import('@/features/audit/components/AuditPage'),
  [paths.sandbox]: () => import('@/features/sandbox/components/SandboxPage'),
  [paths.users]: () => import('@/features/users/components/UsersPage'),
  [paths.login]: () =>
    import('@/features/auth/components/LoginPage').then((m) => ({ default: m.LoginPage })),
};

/** The page components, each loaded when first shown. */
export const pages: Record<string, ComponentType> = Object.fromEntries(
  Object.entries(loaders).map(([path, load]) => [path, lazy(load)]),
);

/** The route of `pathname` (the longest path it is at or under). */
function routeOf(pathname: string): string | undefined {
  return Object.keys(loaders)
    .filter((p) => (p === '/' ? pathname === '/' : pathname === p || pathname.startsWith(`${p}/`)))
    .sort((a, b) => b.length - a.length)[0];
}

/** Starts loading the chunk of the page at `pathname` (a module is fetched once). */
export function preloadPage(pathname: string): void {
  const path = routeOf(pathname);
  if (path) void loaders[path]!().catch(() => {});
}

// The first read of the pages whose first rows are measured (docs/benchmarks/ops-pages.md):
// without it the list request waits for the page's chunks and its first render. The
// Dashboard's figures (its largest paint, the dead-letter trend, waits for /stats) are read
// again on every `stats` frame, so they need no read mark.
const dataLoaders: Record<string, (qc: QueryClient, search: URLSearchParams) => Promise<void>> = {
  [paths.dashboard]: prefetchDashboard,
  [paths.dlq]: prefetchDlqPage,
  [paths.audit]: prefetchAuditPage,
};

/**
 * Starts the first read of the page at `location` into the query cache, with the page's own
 * query key, so that the data and the page's chunk load side by side. It does not wait for the
 * session's answer: the browser opens at most six connections to the server, and a request
 * sent after that answer queued behind the page's chunks (16 for Dead letters), ~300 ms later.
 * Signed out or without the permission, the server refuses it and the page is not shown.
 * The page's live topic follows from this read (the feature's `ReadMark`): the socket replays
 * from the position the read answered (`read_position`), so an entry captured in between is not
 * missed and the list is not read twice.
 */
export function prefetchPageData(
  qc: QueryClient,
  location: { pathname: string; search: string },
): void {
  const path = routeOf(location.pathname);
  const load = path ? dataLoaders[path] : undefined;
  if (load) void load(qc, new URLSearchParams(location.search));
}
