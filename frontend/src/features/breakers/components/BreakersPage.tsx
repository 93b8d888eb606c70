import { useMemo, useState } from 'react';
import { useSearchParams } from 'react-router-dom';
import {
  Box,
  Button,
  Chip,
  Dialog,
  DialogActions,
  DialogContent,
  DialogContentText,
  DialogTitle,
  Stack,
  TextField,
  Typography,
} from '@mui/material';
import { EmptyState } from '@/components/EmptyState';
import { ErrorAlert, errorText } from '@/components/ErrorAlert';
import type { ApiError } from '@/lib/http';
import { PermissionButton } from '@/components/PermissionButton';
import { CardSkeleton } from '@/components/Skeletons';
import { perm } from '@/lib/permissions';
import { toast } from '@/lib/ui';
import { useNow } from '@/lib/useNow';
import { useBreakerAction, type AdminAction } from '../api/admin';
import { useBreakerDetails, type Breaker, type BreakerState } from '../api/breaker';
import { useBreakers } from '../api/list';
import { useBreakersLive } from '../api/live';
import { useResetAll } from '../api/resetAll';
import { BreakerCard, stateLabel } from './BreakerCard';

const states: BreakerState[] = ['OPEN', 'HALF_OPEN', 'FORCED_OPEN', 'DISABLED', 'CLOSED'];
const actionText: Record<AdminAction, string> = {
  reset: 'Reset (close, clear the failures)',
  force_open: 'Force open (refuse every call until a reset)',
  disable: 'Disable (allow every call, ignore outcomes until a reset)',
};
const done: Record<AdminAction, string> = {
  reset: 'reset',
  force_open: 'forced open',
  disable: 'disabled',
};

function ConfirmAction({
  ask,
  onClose,
}: {
  ask: { name: string; action: AdminAction };
  onClose: () => void;
}) {
  const act = useBreakerAction();
  const [reason, setReason] = useState('');
  const bad = (act.error as ApiError | null)?.field === 'reason';
  return (
    <Dialog open onClose={onClose} aria-labelledby="breaker-action-title">
      <DialogTitle id="breaker-action-title">{ask.name}</DialogTitle>
      <DialogContent>
        <DialogContentText>{actionText[ask.action]}?</DialogContentText>
        {ask.action !== 'reset' && (
          <TextField
            label="Reason"
            size="small"
            fullWidth
            sx={{ mt: 2 }}
            value={reason}
            onChange={(e) => setReason(e.target.value)}
            error={bad}
            helperText={bad ? errorText(act.error) : 'Kept in the event, for the audit log'}
            slotProps={{ htmlInput: { maxLength: 512 } }}
          />
        )}
        {act.isError && !bad && (
          <DialogContentText color="error">{errorText(act.error)}</DialogContentText>
        )}
      </DialogContent>
      <DialogActions>
        <Button onClick={onClose}>Cancel</Button>
        <Button
          variant="contained"
          color={ask.action === 'force_open' ? 'error' : 'primary'}
          disabled={act.isPending}
          onClick={() =>
            act.mutate(
              { ...ask, reason },
              {
                onSuccess: () => {
                  toast(`${ask.name} ${done[ask.action]}`);
                  onClose();
                },
              },
            )
          }
        >
          Confirm
        </Button>
      </DialogActions>
    </Dialog>
  );
}

function ConfirmResetAll({ targets, onClose }: { targets: Breaker[]; onClose: () => void }) {
  const reset = useResetAll();
  const n = targets.length;
  return (
    <Dialog open onClose={onClose} aria-labelledby="reset-all-title">
      <DialogTitle id="reset-all-title">
        Reset {n} {n === 1 ? 'breaker' : 'breakers'}?
      </DialogTitle>
      <DialogContent>
        <DialogContentText>
          Closes and clears {targets.map((b) => b.name).join(', ')}. Breakers that are closed
          without failures are left alone.
        </DialogContentText>
      </DialogContent>
      <DialogActions>
        <Button onClick={onClose}>Cancel</Button>
        <Button
          variant="contained"
          disabled={reset.isPending}
          onClick={() =>
            reset.mutate(undefined, {
              onSuccess: (r) => {
                toast(`${r.reset.length} ${r.reset.length === 1 ? 'breaker' : 'breakers'} reset`);
                onClose();
              },
              onError: (e) => toast(errorText(e), 'error'),
            })
          }
        >
          Reset {n}
        </Button>
      </DialogActions>
    </Dialog>
  );
}

export default function BreakersPage() {
  useBreakersLive();
  const [params, setParams] = useSearchParams();
  const q = params.get('q') ?? '';
  const only = params.get('state') as BreakerState | null;
  const list = useBreakers();
  const names = useMemo(() => Object.keys(list.data?.breakers ?? {}).sort(), [list.data]);
  const details = useBreakerDetails(names);
  const breakers = details.flatMap((d) => (d.data ? [d.data] : []));
  const anyOpen = breakers.some((b) => b.state === 'OPEN');
  const now = useNow(1000, anyOpen);
  const [ask, setAsk] = useState<{ name: string; action: AdminAction } | null>(null);
  const [resetAll, setResetAll] = useState(false);
  const set = (k: string, v: string | null) =>
    setParams(
      (p) => {
        const n = new URLSearchParams(p);
        if (v) n.set(k, v);
        else n.delete(k);
        return n;
      },
      { replace: true },
    );
  const counts = Object.fromEntries(
    states.map((s) => [s, breakers.filter((b) => b.state === s).length]),
  );
  const needle = q.trim().toLowerCase();
  const shown = breakers.filter(
    (b) => (!only || b.state === only) && (!needle || b.name.toLowerCase().includes(needle)),
  );
  // Open ones first: what needs attention.
  shown.sort(
    (a, b) => states.indexOf(a.state) - states.indexOf(b.state) || a.name.localeCompare(b.name),
  );
  const resettable = breakers.filter((b) => !(b.state === 'CLOSED' && b.failures === 0));

  return (
    <Stack spacing={3}>
      <Stack
        direction="row"
        sx={{ justifyContent: 'space-between', alignItems: 'center', flexWrap: 'wrap', gap: 1 }}
      >
        <Typography variant="h4" component="h1">
          Circuit breakers
        </Typography>
        <PermissionButton
          permission={perm.adminResetBreakers}
          variant="contained"
          disabled={resettable.length === 0}
          onClick={() => setResetAll(true)}
        >
          Reset all…
        </PermissionButton>
      </Stack>
      <Box
        sx={{ display: 'flex', gap: 1, flexWrap: 'wrap', alignItems: 'center' }}
        aria-label="Breakers per state"
        role="group"
      >
        <TextField
          label="Search breakers"
          size="small"
          type="search"
          value={q}
          onChange={(e) => set('q', e.target.value || null)}
        />
        {states.map((s) => (
          <Chip
            key={s}
            label={`${stateLabel[s]}: ${counts[s] ?? 0}`}
            variant={only === s ? 'filled' : 'outlined'}
            color={only === s ? 'primary' : 'default'}
            aria-pressed={only === s}
            onClick={() => set('state', only === s ? null : s)}
          />
        ))}
      </Box>
      {list.isPending ||
      (names.length > 0 && breakers.length === 0 && !details.some((d) => d.isError)) ? (
        <CardSkeleton height={180} />
      ) : list.isError ? (
        <ErrorAlert error={list.error} what="the breakers" />
      ) : names.length === 0 ? (
        <EmptyState title="No breakers yet">
          A breaker appears once a service reports a failure or an operator configures it.
        </EmptyState>
      ) : shown.length === 0 ? (
        <EmptyState title="No breaker matches this view" />
      ) : (
        <Box
          sx={{
            display: 'grid',
            gap: 2,
            gridTemplateColumns: { xs: '1fr', md: '1fr 1fr', xl: '1fr 1fr 1fr' },
          }}
        >
          {shown.map((b) => (
            <BreakerCard
              key={b.name}
              b={b}
              calls={list.data?.breakers[b.name]}
              now={now}
              onAction={(name, action) => setAsk({ name, action })}
            />
          ))}
        </Box>
      )}
      {ask && <ConfirmAction ask={ask} onClose={() => setAsk(null)} />}
      {resetAll && <ConfirmResetAll targets={resettable} onClose={() => setResetAll(false)} />}
    </Stack>
  );
}
