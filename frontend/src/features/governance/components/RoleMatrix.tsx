import { memo, useDeferredValue } from 'react';
import { Box, type Theme } from '@mui/material';
import { ErrorAlert } from '@/components/ErrorAlert';
import { TableSkeleton } from '@/components/Skeletons';
import { fmtInt } from '@/lib/format';
import { useRoles, type RolesResponse } from '../api/roles';

// A plain table styled once (MUI's small table: its paddings, borders and type), not a MUI
// component per cell: ~100 cells, below the fold, were ~100 styled components to render and
// a long task on a slow phone.
const tableSx = (t: Theme) => ({
  overflowX: 'auto',
  '& table': {
    width: '100%',
    borderCollapse: 'collapse',
    typography: 'body2',
  },
  '& th, & td': {
    p: '6px 16px',
    borderBottom: `1px solid ${t.palette.divider}`,
    color: t.palette.text.primary,
    textAlign: 'center',
  },
  '& thead th': { fontWeight: t.typography.fontWeightMedium, lineHeight: '1.5rem' },
  '& th[scope="row"], & thead th:first-of-type': { textAlign: 'left' },
  '& tbody th': { fontWeight: t.typography.fontWeightRegular },
  '& .no': { color: t.palette.text.secondary },
});

/** Which role holds which permission, and its rate limit (the "role filters"). */
export function RoleMatrix() {
  const roles = useRoles();
  // Rendered as a transition: the page's table and counts come first.
  const data = useDeferredValue(roles.data);
  if (data) return <Matrix roles={data.roles} />;
  if (roles.isError) return <ErrorAlert error={roles.error} what="the roles" />;
  return <TableSkeleton rows={6} />;
}

const Matrix = memo(function Matrix({ roles: list }: { roles: RolesResponse['roles'] }) {
  const permissions = [...new Set(list.flatMap((r) => r.permissions))].sort();
  return (
    <Box sx={tableSx} tabIndex={0} aria-label="Role matrix, scrollable">
      <table aria-label="Permissions per role">
        <thead>
          <tr>
            <th scope="col">Permission</th>
            {list.map((r) => (
              <th key={r.role} scope="col">
                {r.role}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {permissions.map((p) => (
            <tr key={p}>
              <th scope="row">
                <code>{p}</code>
              </th>
              {list.map((r) =>
                r.permissions.includes(p) ? (
                  <td key={r.role} aria-label="yes">
                    ✓
                  </td>
                ) : (
                  <td key={r.role} aria-label="no" className="no">
                    ·
                  </td>
                ),
              )}
            </tr>
          ))}
          <tr>
            <th scope="row">requests / minute</th>
            {list.map((r) => (
              <td key={r.role}>{fmtInt(r.rate_limit_per_minute)}</td>
            ))}
          </tr>
        </tbody>
      </table>
    </Box>
  );
});
