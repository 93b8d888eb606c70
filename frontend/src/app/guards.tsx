import { startTransition, useEffect, useState, type ReactNode } from 'react';
import { Navigate, useLocation } from 'react-router-dom';
import { paths } from '@/config/paths';
import { PageSkeleton } from '@/components/Skeletons';
import type { Permission } from '@/lib/permissions';
import { hasPermission, useSession } from '@/lib/session';
import { pageTitle } from './nav';

/**
 * The session store, taken in as transitions. A store read with `useSession` re-renders
 * synchronously when it changes (React renders external stores' updates in one task), and the
 * answer of `/auth/me` is what mounts the whole signed-in page: rendered that way it was one
 * task of 360–740 ms on a 4x slower CPU (Chrome traces of a cold Governance and Dashboard
 * load). As a transition React renders it in slices and paints in between.
 */
export function useSessionTransition() {
  const [state, setState] = useState(useSession.getState);
  useEffect(() => {
    const take = () => startTransition(() => setState(useSession.getState()));
    take(); // a change between the first render and this effect
    return useSession.subscribe(take);
  }, []);
  return state;
}

/**
 * Signed-in pages: the login page otherwise, remembering where the person was going. While
 * the session is being asked for, the page's heading and placeholders (in the shell).
 */
export function RequireAuth({ children }: { children: ReactNode }) {
  const { status, expired } = useSessionTransition();
  const location = useLocation();
  if (status === 'unknown') return <PageSkeleton title={pageTitle(location.pathname)} />;
  if (status === 'anonymous') {
    const next = location.pathname + location.search;
    const q = new URLSearchParams();
    if (next !== paths.dashboard) q.set('next', next);
    if (expired) q.set('expired', '1');
    const qs = q.toString();
    return <Navigate to={`${paths.login}${qs ? `?${qs}` : ''}`} replace />;
  }
  return <>{children}</>;
}

/**
 * A page the role may not open goes to the 403 page. The session as `RequireAuth` sees it: an
 * ended session goes to the login page, not first to the 403 page.
 */
export function RequirePermission({
  permission,
  children,
}: {
  permission: Permission;
  children: ReactNode;
}) {
  const { user } = useSessionTransition();
  const location = useLocation();
  if (!hasPermission(user, permission)) {
    return (
      <Navigate to={paths.forbidden} replace state={{ from: location.pathname, permission }} />
    );
  }
  return <>{children}</>;
}
