import { useState } from 'react';
import {
  Alert,
  Box,
  Button,
  Chip,
  LinearProgress,
  Stack,
  ToggleButton,
  ToggleButtonGroup,
  Typography,
} from '@mui/material';
import { errorText } from '@/components/ErrorAlert';
import { PermissionButton } from '@/components/PermissionButton';
import { fmtInt, fmtTime } from '@/lib/format';
import { perm } from '@/lib/permissions';
import { toast } from '@/lib/ui';
import type { RedriveJob } from '../api/redrive';
import { useRedriveAction, type RedriveAction } from '../api/redriveActions';
import { useRedriveJob } from '../api/redriveJob';
import { useRedriveResults, type RedriveOutcome, type RedriveResult } from '../api/redriveResults';

const outcomeColor = { moved: 'success', skipped: 'default', failed: 'error' } as const;

function ResultRow({ r, onOpenEntry }: { r: RedriveResult; onOpenEntry: (id: string) => void }) {
  return (
    <Box
      component="li"
      data-result={r.entry_id}
      data-outcome={r.outcome}
      sx={{
        display: 'grid',
        gridTemplateColumns: { xs: '1fr', sm: '80px minmax(0, 1.2fr) minmax(0, 2fr) auto' },
        gap: 1,
        alignItems: 'center',
        py: 0.5,
        borderTop: 1,
        borderColor: 'divider',
      }}
    >
      <Chip size="small" label={r.outcome} color={outcomeColor[r.outcome]} />
      <Button
        size="small"
        onClick={() => onOpenEntry(r.entry_id)}
        sx={{ justifyContent: 'flex-start', textTransform: 'none', overflowWrap: 'anywhere' }}
        aria-label={`Open entry ${r.entry_id}`}
      >
        {r.entry_id}
      </Button>
      <Typography variant="body2" sx={{ overflowWrap: 'anywhere' }}>
        {r.reason ?? (r.message_id ? `message id ${r.message_id}` : '')}
      </Typography>
      <Typography variant="caption" color="text.secondary">
        {fmtTime(r.at)}
      </Typography>
    </Box>
  );
}

/** Which entries the job moved, skipped or failed (and why), 100 at a time. */
function Results({ job, onOpenEntry }: { job: RedriveJob; onOpenEntry: (id: string) => void }) {
  const [outcome, setOutcome] = useState<RedriveOutcome | 'all'>(job.failed > 0 ? 'failed' : 'all');
  const handled = job.moved + job.skipped + job.failed;
  const results = useRedriveResults(job.id, outcome === 'all' ? undefined : outcome, handled, true);
  const items = results.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <Stack spacing={1} component="section" aria-label="Redrive results">
      <ToggleButtonGroup
        size="small"
        exclusive
        value={outcome}
        onChange={(_, v) => v && setOutcome(v)}
        aria-label="Results to show"
        sx={{ flexWrap: 'wrap' }}
      >
        <ToggleButton value="all">All {fmtInt(handled)}</ToggleButton>
        <ToggleButton value="moved">Moved {fmtInt(job.moved)}</ToggleButton>
        <ToggleButton value="failed">Failed {fmtInt(job.failed)}</ToggleButton>
        <ToggleButton value="skipped">Skipped {fmtInt(job.skipped)}</ToggleButton>
      </ToggleButtonGroup>
      {results.isError ? (
        <Typography color="error">{errorText(results.error)}</Typography>
      ) : items.length === 0 ? (
        <Typography variant="body2">
          {results.isPending ? 'Loading…' : 'No entry of this kind yet.'}
        </Typography>
      ) : (
        <Box
          component="ul"
          sx={{ listStyle: 'none', m: 0, p: 0, maxHeight: 280, overflow: 'auto' }}
          tabIndex={0}
          aria-label="Entries the job handled"
        >
          {items.map((r) => (
            <ResultRow key={r.n} r={r} onOpenEntry={onOpenEntry} />
          ))}
        </Box>
      )}
      {results.hasNextPage && (
        <Box>
          <Button
            size="small"
            disabled={results.isFetchingNextPage}
            onClick={() => void results.fetchNextPage()}
          >
            More results
          </Button>
        </Box>
      )}
    </Stack>
  );
}

const actionDone: Record<RedriveAction, string> = {
  pause: 'Redrive paused',
  resume: 'Redrive resumed',
  cancel: 'Redrive cancelled',
};

/**
 * A redrive job's live progress: moved, skipped, failed of all; pause, resume and cancel; the
 * per-entry results on demand.
 */
export function RedriveProgress({
  id,
  onDismiss,
  onOpenEntry,
}: {
  id: string;
  onDismiss: () => void;
  onOpenEntry: (id: string) => void;
}) {
  const job = useRedriveJob(id);
  const act = useRedriveAction();
  const [showResults, setShowResults] = useState(false);
  if (job.isError)
    return (
      <Alert severity="error" onClose={onDismiss}>
        Redrive job {id}: {errorText(job.error)}
      </Alert>
    );
  const j = job.data;
  if (!j) return <LinearProgress aria-label="Loading the redrive job" />;
  const done = j.moved + j.skipped + j.failed;
  const all = done + j.remaining;
  const pct = all === 0 ? 100 : Math.round((done / all) * 100);
  const running = j.state === 'running';
  const paused = j.state === 'paused';
  const open = running || paused;
  const filter = [j.filter.subject, j.filter.error_contains && `“${j.filter.error_contains}”`]
    .filter(Boolean)
    .join(' · ');
  const actions: { action: RedriveAction; label: string; when: boolean }[] = [
    { action: 'pause', label: 'Pause redrive', when: running },
    { action: 'resume', label: 'Resume redrive', when: paused },
    { action: 'cancel', label: 'Cancel redrive', when: open },
  ];
  const run = (action: RedriveAction) =>
    act.mutate(
      { id: j.id, action },
      {
        onSuccess: () => toast(actionDone[action]),
        onError: (e) => toast(errorText(e), 'error'),
      },
    );
  return (
    <Alert
      severity={j.failed > 0 ? 'warning' : open ? 'info' : 'success'}
      onClose={open ? undefined : onDismiss}
      data-testid="redrive-progress"
      data-state={j.state}
      sx={{ '& .MuiAlert-message': { flexGrow: 1, minWidth: 0 } }}
    >
      <Stack spacing={1} sx={{ minWidth: { xs: 240, sm: 420 } }}>
        <Typography>
          Redrive {j.state}
          {filter ? ` (${filter})` : ''} at {j.rate}/s: {fmtInt(j.moved)} requeued,{' '}
          {fmtInt(j.skipped)} skipped, {fmtInt(j.failed)} failed, {fmtInt(j.remaining)} to go
        </Typography>
        <Box sx={{ display: 'flex', alignItems: 'center', gap: 1 }}>
          <LinearProgress
            variant="determinate"
            value={pct}
            color={paused ? 'warning' : 'primary'}
            sx={{ flexGrow: 1, height: 8, borderRadius: 4 }}
            aria-label="Redrive progress"
          />
          <Typography variant="body2">{pct}%</Typography>
        </Box>
        {j.state_changed_by && (paused || j.state === 'cancelled') && (
          <Typography variant="body2">
            {paused ? 'Paused' : 'Cancelled'} by {j.state_changed_by} at {fmtTime(j.updated_at)}
          </Typography>
        )}
        {j.last_error && <Typography variant="body2">Last error: {j.last_error}</Typography>}
        <Stack direction="row" spacing={1} sx={{ flexWrap: 'wrap', rowGap: 1 }}>
          {actions
            .filter((a) => a.when)
            .map((a) => (
              <PermissionButton
                key={a.action}
                permission={perm.writeDlq}
                size="small"
                variant={a.action === 'resume' ? 'contained' : 'outlined'}
                color={a.action === 'cancel' ? 'error' : 'primary'}
                disabled={act.isPending}
                onClick={() => run(a.action)}
              >
                {a.label}
              </PermissionButton>
            ))}
          <Button
            size="small"
            aria-expanded={showResults}
            onClick={() => setShowResults((s) => !s)}
          >
            {showResults ? 'Hide results' : `Results per entry (${fmtInt(done)})`}
          </Button>
        </Stack>
        {showResults && <Results job={j} onOpenEntry={onOpenEntry} />}
      </Stack>
    </Alert>
  );
}
