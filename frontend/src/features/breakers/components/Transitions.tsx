import { Link as RouterLink } from 'react-router-dom';
import { Box, Link, Typography } from '@mui/material';
import { paths } from '@/config/paths';
import { fmtTime } from '@/lib/format';
import { perm } from '@/lib/permissions';
import { useCan } from '@/lib/session';
import { useTransitions, type Transition, type TransitionKind } from '../api/transitions';

/** The audit page filtered to this breaker, with one of its events open. */
export const auditOfBreaker = (name: string, position?: number) =>
  `${paths.audit}?aggregate_type=CircuitBreaker&aggregate_id=${encodeURIComponent(name)}${
    position ? `&event=${position}` : ''
  }`;

const overrideLabel: Record<string, string> = {
  BreakerReset: 'reset',
  BreakerForcedOpen: 'forced open',
  BreakerDisabled: 'disabled',
};

function Line({ x, kind }: { x: Transition; kind: TransitionKind }) {
  if (kind === 'openings') {
    return (
      <>
        {fmtTime(x.at)}: opened{x.from ? ` from ${x.from}` : ''} · cause:{' '}
        {x.error ? <strong>{x.error}</strong> : 'no error text reported'} · reported by {x.actor}
      </>
    );
  }
  if (kind === 'overrides') {
    return (
      <>
        {fmtTime(x.at)}: <strong>{overrideLabel[x.event_type] ?? x.event_type}</strong> by {x.actor}
        {x.reason ? `: “${x.reason}”` : x.event_type === 'BreakerReset' ? '' : ' (no reason given)'}
        {x.from ? ` (was ${x.from})` : ''}
      </>
    );
  }
  return (
    <>
      {fmtTime(x.at)}: {x.from ? `${x.from} → ` : ''}
      <strong>{x.state}</strong> by {x.actor}
      {x.error ? ` (${x.error})` : ''}
      {x.reason ? `: “${x.reason}”` : ''}
    </>
  );
}

/**
 * A breaker's last ten transitions of a kind: its openings with their cause, or the forced
 * changes with who and why; each linked to the audit page filtered to the breaker.
 */
export function Transitions({ name, kind = 'all' }: { name: string; kind?: TransitionKind }) {
  const t = useTransitions(name, kind, true);
  const audit = useCan(perm.readAudit);
  if (t.isPending) return <Typography variant="body2">Reading…</Typography>;
  if (t.isError) return <Typography variant="body2">Could not read the transitions.</Typography>;
  if (!t.data.transitions.length) return <Typography variant="body2">None yet.</Typography>;
  return (
    <Box
      component="ol"
      sx={{ m: 0, pl: 2.5, fontSize: 14, overflowWrap: 'anywhere' }}
      data-testid={`transitions-${kind}`}
    >
      {t.data.transitions.map((x) => (
        <li key={x.position}>
          <Line x={x} kind={kind} />
          {audit && (
            <>
              {' · '}
              <Link component={RouterLink} to={auditOfBreaker(name, x.position)}>
                event {x.position}
              </Link>
            </>
          )}
        </li>
      ))}
    </Box>
  );
}
