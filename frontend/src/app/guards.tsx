import type { ReactNode } from 'react';
import { Navigate, useLocation } from 'react-router-dom';
import { paths } from '@/config/paths';
import { PageSkeleton } from '@/components/Skeletons';
import type { Permission } from '@/lib/permissions';
import { hasPermission, useSession } from '@/lib/session';

/** Signed-in pages: the login page otherwise, remembering where the person was going. */
export function RequireAuth({ children }: { children: ReactNode }) {
  const { status, expired } = useSession();
  const location = useLocation();
  if (status === 'unknown') return <PageSkeleton />;
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

/** A page the role may not open goes to the 403 page. */
export function RequirePermission({
  permission,
  children,
}: {
  permission: Permission;
  children: ReactNode;
}) {
  const user = useSession((s) => s.user);
  const location = useLocation();
  if (!hasPermission(user, permission)) {
    return (
      <Navigate to={paths.forbidden} replace state={{ from: location.pathname, permission }} />
    );
  }
  return <>{children}</>;
}
