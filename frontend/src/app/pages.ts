import { lazy, type ComponentType } from 'react';
import type { QueryClient } from '@tanstack/react-query';
import { paths } from '@/config/paths';
import { prefetchDashboard } from '@/features/dashboard/prefetch';

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

// The first reads started before the page's chunk: only those no live event can leave behind
// (a list read before the page subscribes to its topic misses what happens in between).
const dataLoaders: Record<string, (qc: QueryClient) => void> = {
  [paths.dashboard]: prefetchDashboard,
};

/** Starts the first reads of the page at `pathname` into the query cache (see `dataLoaders`). */
export function prefetchPageData(qc: QueryClient, pathname: string): void {
  const path = routeOf(pathname);
  if (path) dataLoaders[path]?.(qc);
}
