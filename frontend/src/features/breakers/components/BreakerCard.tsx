import { memo, useState } from 'react';
import { Link as RouterLink } from 'react-router-dom';
import {
  Box,
  Card,
  CardActions,
  CardContent,
  Chip,
  LinearProgress,
  Link,
  Stack,
  Typography,
} from '@mui/material';
import { PermissionButton } from '@/components/PermissionButton';
import { fmtDuration, fmtInt, fmtTime } from '@/lib/format';
import { perm } from '@/lib/permissions';
import { useCan } from '@/lib/session';
import type { AdminAction } from '../api/admin';
import type { Breaker, BreakerState } from '../api/breaker';
import type { BreakerList } from '../api/list';
import type { TransitionKind } from '../api/transitions';
import { auditOfBreaker, Transitions } from './Transitions';

/** Calls reported over the last five minutes (from `GET /circuit-breakers`). */
export type RecentCalls = Pick<
  BreakerList['breakers'][string],
  'recent_calls' | 'recent_failures' | 'failure_rate'
>;

/** A disclosure that reads its transitions only once opened. */
function TransitionsDisclosure({
  name,
  kind,
  label,
}: {
  name: string;
  kind: TransitionKind;
  label: string;
}) {
  const [open, setOpen] = useState(false);
  return (
    <Box
      component="details"
      sx={{ mt: 1, '& summary': { cursor: 'pointer' } }}
      onToggle={(e) => setOpen((e.currentTarget as HTMLDetailsElement).open)}
    >
      <Typography component="summary" variant="body2">
        {label}
      </Typography>
      {open && <Transitions name={name} kind={kind} />}
    </Box>
  );
}

function FailureRate({ calls }: { calls: RecentCalls | undefined }) {
  if (!calls || calls.recent_calls === 0)
    return (
      <Typography variant="body2" color="text.secondary" data-testid="failure-rate">
        No calls reported in the last 5 minutes
      </Typography>
    );
  const rate = Math.round((calls.failure_rate ?? 0) * 1000) / 10;
  return (
    <Typography variant="body2" data-testid="failure-rate">
      Failure rate (5 min): <strong>{rate}%</strong> of {fmtInt(calls.recent_calls)}{' '}
      {calls.recent_calls === 1 ? 'call' : 'calls'} ({fmtInt(calls.recent_failures)} failed)
    </Typography>
  );
}

const colour: Record<BreakerState, 'success' | 'error' | 'warning' | 'default'> = {
  CLOSED: 'success',
  OPEN: 'error',
  HALF_OPEN: 'warning',
  FORCED_OPEN: 'error',
  DISABLED: 'default',
};

export const stateLabel: Record<BreakerState, string> = {
  CLOSED: 'Closed',
  OPEN: 'Open',
  HALF_OPEN: 'Half-open',
  FORCED_OPEN: 'Forced open',
  DISABLED: 'Disabled',
};

/** One breaker: state, failures against the threshold, the countdown to half-open, actions. */
export const BreakerCard = memo(function BreakerCard({
  b,
  calls,
  now,
  onAction,
}: {
  b: Breaker;
  calls: RecentCalls | undefined;
  now: number;
  onAction: (name: string, action: AdminAction) => void;
}) {
  const audit = useCan(perm.readAudit);
  const threshold = b.config.failure_threshold;
  const pct = Math.min(100, (b.failures / threshold) * 100);
  const retryIn = b.next_retry ? new Date(b.next_retry).getTime() - now : null;
  return (
    <Card
      variant="outlined"
      component="section"
      aria-labelledby={`breaker-${b.name}`}
      data-breaker={b.name}
      data-state={b.state}
      sx={{
        borderLeft: 6,
        borderLeftColor: `${colour[b.state] === 'default' ? 'grey' : colour[b.state]}.main`,
      }}
    >
      <CardContent>
        <Stack
          direction="row"
          spacing={1}
          sx={{ alignItems: 'center', justifyContent: 'space-between' }}
        >
          <Typography
            id={`breaker-${b.name}`}
            variant="h6"
            component="h2"
            sx={{ overflowWrap: 'anywhere' }}
          >
            {b.name}
          </Typography>
          <Chip
            label={stateLabel[b.state]}
            color={colour[b.state]}
            variant={b.state === 'FORCED_OPEN' || b.state === 'DISABLED' ? 'outlined' : 'filled'}
            data-testid="breaker-state"
          />
        </Stack>
        <Box sx={{ mt: 1.5 }}>
          <Typography variant="body2">
            Consecutive failures: {fmtInt(b.failures)} of {fmtInt(threshold)} ({Math.round(pct)}% of
            the threshold)
          </Typography>
          <LinearProgress
            variant="determinate"
            value={pct}
            color={pct >= 100 ? 'error' : pct > 0 ? 'warning' : 'primary'}
            aria-label={`Failures of ${b.name} against its threshold`}
            sx={{ mt: 0.5, height: 6, borderRadius: 3 }}
          />
        </Box>
        <Box sx={{ mt: 1 }}>
          <FailureRate calls={calls} />
        </Box>
        {b.state === 'OPEN' && retryIn !== null && (
          <Box sx={{ mt: 1 }}>
            <Typography variant="body2" role="timer" aria-live="off">
              Half-open in {fmtDuration(Math.max(0, retryIn))}
              {b.next_retry ? ` (at ${fmtTime(b.next_retry)})` : ''}
            </Typography>
            <LinearProgress
              variant="determinate"
              value={Math.min(
                100,
                Math.max(0, 100 - (retryIn / (b.config.open_seconds * 1000)) * 100),
              )}
              color="error"
              aria-label={`Time until ${b.name} turns half-open`}
              sx={{ mt: 0.5, height: 4, borderRadius: 2 }}
            />
          </Box>
        )}
        {b.state === 'HALF_OPEN' && (
          <Typography variant="body2" sx={{ mt: 1 }}>
            Trial calls: {fmtInt(b.trials_granted)} granted, {fmtInt(b.successes)} of{' '}
            {fmtInt(b.config.half_open_max_calls)} successes
          </Typography>
        )}
        {b.last_error && (
          <Typography variant="body2" sx={{ mt: 1, overflowWrap: 'anywhere' }}>
            Last error: {b.last_error}
          </Typography>
        )}
        <Typography variant="caption" color="text.secondary" component="p" sx={{ mt: 1 }}>
          {b.changed_at ? `Changed ${fmtTime(b.changed_at)} by ${b.changed_by ?? '?'}` : ''} · opens
          after {fmtInt(threshold)} failures for {fmtDuration(b.config.open_seconds * 1000)}
        </Typography>
        <TransitionsDisclosure name={b.name} kind="openings" label="Last 10 openings" />
        <TransitionsDisclosure name={b.name} kind="overrides" label="Forced changes (who, why)" />
        {audit && (
          <Typography variant="body2" sx={{ mt: 1 }}>
            <Link component={RouterLink} to={auditOfBreaker(b.name)}>
              Every event of {b.name} in the audit log
            </Link>
          </Typography>
        )}
      </CardContent>
      <CardActions sx={{ flexWrap: 'wrap', gap: 1 }}>
        <PermissionButton
          permission={perm.adminResetBreakers}
          size="small"
          disabled={b.state === 'CLOSED' && b.failures === 0}
          onClick={() => onAction(b.name, 'reset')}
          aria-label={`Reset ${b.name}`}
        >
          Reset
        </PermissionButton>
        <PermissionButton
          permission={perm.adminResetBreakers}
          size="small"
          color="error"
          disabled={b.state === 'FORCED_OPEN'}
          onClick={() => onAction(b.name, 'force_open')}
          aria-label={`Force open ${b.name}`}
        >
          Force open
        </PermissionButton>
        <PermissionButton
          permission={perm.adminResetBreakers}
          size="small"
          disabled={b.state === 'DISABLED'}
          onClick={() => onAction(b.name, 'disable')}
          aria-label={`Disable ${b.name}`}
        >
          Disable
        </PermissionButton>
      </CardActions>
    </Card>
  );
});
