import {
  Box,
  Table,
  TableBody,
  TableCell,
  TableContainer,
  TableHead,
  TableRow,
} from '@mui/material';
import { ErrorAlert } from '@/components/ErrorAlert';
import { TableSkeleton } from '@/components/Skeletons';
import { useRoles } from '../api/roles';

/** Which role holds which permission, and its rate limit (the "role filters"). */
export function RoleMatrix() {
  const roles = useRoles();
  if (roles.isPending) return <TableSkeleton rows={6} />;
  if (roles.isError) return <ErrorAlert error={roles.error} what="the roles" />;
  const list = roles.data.roles;
  const permissions = [...new Set(list.flatMap((r) => r.permissions))].sort();
  return (
    <TableContainer sx={{ overflowX: 'auto' }} tabIndex={0} aria-label="Role matrix, scrollable">
      <Table size="small" aria-label="Permissions per role">
        <TableHead>
          <TableRow>
            <TableCell component="th" scope="col">
              Permission
            </TableCell>
            {list.map((r) => (
              <TableCell key={r.role} component="th" scope="col" align="center">
                {r.role}
              </TableCell>
            ))}
          </TableRow>
        </TableHead>
        <TableBody>
          {permissions.map((p) => (
            <TableRow key={p}>
              <TableCell component="th" scope="row">
                <code>{p}</code>
              </TableCell>
              {list.map((r) => {
                const has = r.permissions.includes(p);
                return (
                  <TableCell key={r.role} align="center" aria-label={has ? 'yes' : 'no'}>
                    {has ? (
                      '✓'
                    ) : (
                      <Box component="span" sx={{ color: 'text.secondary' }}>
                        ·
                      </Box>
                    )}
                  </TableCell>
                );
              })}
            </TableRow>
          ))}
          <TableRow>
            <TableCell component="th" scope="row">
              requests / minute
            </TableCell>
            {list.map((r) => (
              <TableCell key={r.role} align="center">
                {r.rate_limit_per_minute}
              </TableCell>
            ))}
          </TableRow>
        </TableBody>
      </Table>
    </TableContainer>
  );
}
