import Alert from '@mui/material/Alert';
import AlertTitle from '@mui/material/AlertTitle';
import Link from '@mui/material/Link';
import { Link as RouterLink, useLocation } from 'react-router-dom';
import { paths } from '@/config/paths';
import { useSession } from '@/lib/session';

export function ForbiddenPage() {
  const state = useLocation().state as { from?: string; permission?: string } | null;
  const role = useSession((s) => s.user?.role);
  return (
    <Alert severity="warning">
      <AlertTitle>
        <span role="heading" aria-level={1}>
          403: not for your role
        </span>
      </AlertTitle>
      {state?.from ? <>The page {state.from} </> : <>This page </>}
      needs the <strong>{state?.permission ?? 'a'}</strong> permission, which the role{' '}
      <strong>{role}</strong> does not have.{' '}
      <Link component={RouterLink} to={paths.dashboard}>
        Back to the dashboard
      </Link>
    </Alert>
  );
}
