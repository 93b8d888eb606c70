import { paths } from '@/config/paths';
import { perm, type Permission } from '@/lib/permissions';

export interface NavItem {
  path: string;
  label: string;
  permission: Permission;
  /** Pages of part 2 of the dashboard: routed, not built yet. */
  later?: boolean;
}

/** Every page, the permission it needs to open (docs/permissions.md) and its label. */
export const navItems: NavItem[] = [
  { path: paths.dashboard, label: 'Dashboard', permission: perm.readSystem },
  { path: paths.governance, label: 'Governance', permission: perm.readGovernance },
  { path: paths.budget, label: 'Budget', permission: perm.readBudget },
  { path: paths.dlq, label: 'Dead letters', permission: perm.readDlq },
  { path: paths.breakers, label: 'Circuit breakers', permission: perm.readBreakers },
  { path: paths.sandbox, label: 'Sandbox', permission: perm.executeCode },
  { path: paths.audit, label: 'Audit log', permission: perm.readAudit },
  { path: paths.users, label: 'Users', permission: perm.adminUsers },
];

/** The label of the page at `pathname` (the longest nav path it is at or under): its heading. */
export function pageTitle(pathname: string): string | undefined {
  return navItems
    .filter((i) =>
      i.path === '/' ? pathname === '/' : pathname === i.path || pathname.startsWith(`${i.path}/`),
    )
    .sort((a, b) => b.path.length - a.path.length)[0]?.label;
}
