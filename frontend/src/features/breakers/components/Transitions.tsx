import { Link as RouterLink } from 'react-router-dom';
import { Box, Link, Typography } from '@mui/material';
import { paths } from '@/config/paths';
import { fmtTime } from '@/lib/format';
import { perm } from '@/lib/permissions';
import { useCan } from '@/lib/session';
import { useTransitions } from '../api/transitions';

/** The breaker's last ten state changes: openings with their cause, overrides with who. */
export function Transitions({ name }: { name: string }) {
  const t = useTransitions(name, true);
  const audit = useCan(perm.readAudit);
  if (t.isPending) return <Typography variant="body2">Reading…</Typography>;
  if (t.isError) return <Typography variant="body2">Could not read the transitions.</Typography>;
  if (!t.data.transitions.length) return <Typography variant="body2">None yet.</Typography>;
  return (
    <Box component="ol" sx={{ m: 0, pl: 2.5, fontSize: 14 }} data-testid="transitions">
      {t.data.transitions.map((x) => (
        <li key={x.position}>
          {fmtTime(x.at)}: {x.from ? `${x.from} → ` : ''}
          <strong>{x.state}</strong> by {x.actor}
          {x.error ? ` (${x.error})` : ''}
          {x.reason ? `: “${x.reason}”` : ''}
          {audit && (
            <>
              {' · '}
              <Link
                component={RouterLink}
                to={`${paths.audit}?aggregate_type=CircuitBreaker&aggregate_id=${encodeURIComponent(name)}&event=${x.position}`}
              >
                event {x.position}
              </Link>
            </>
          )}
        </li>
      ))}
    </Box>
  );
}
