import { useEffect } from 'react';
import { Alert, Box, Button, LinearProgress, Stack, Typography } from '@mui/material';
import { errorText } from '@/components/ErrorAlert';
import { fmtInt } from '@/lib/format';
import { useVerifyStream, type VerifyProgress, type VerifyReport } from '../api/verifyStream';

const phaseText: Record<string, string> = {
  chains: 'Recomputing every aggregate’s hash chain',
  checkpoints: 'Recomputing the running hash up to the newest checkpoint',
  stream: 'Comparing the log with the events stream',
};

function Progress({ p }: { p: VerifyProgress | null }) {
  const pct = p && p.total > 0 ? Math.min(100, Math.round((p.done / p.total) * 100)) : null;
  return (
    <Box role="status" data-testid="verify-progress" data-phase={p?.phase ?? 'starting'}>
      <Typography variant="body2">
        {p ? (phaseText[p.phase] ?? p.phase) : 'Starting…'}
        {p && p.phase !== 'stream' && `: ${fmtInt(p.done)} of ${fmtInt(p.total)} events`}
        {pct !== null && p?.phase !== 'stream' ? ` (${pct}%)` : ''}
      </Typography>
      <LinearProgress
        aria-label="Verifying"
        variant={pct === null || p?.phase === 'stream' ? 'indeterminate' : 'determinate'}
        value={pct ?? 0}
      />
    </Box>
  );
}

/**
 * Runs the chain verification with its progress (streamed: long logs take a while) and shows
 * the result, or the first event that fails it.
 */
export function VerifyPanel() {
  const { state, start, stop } = useVerifyStream();
  useEffect(() => stop, [stop]);
  const running = state.status === 'running';
  return (
    <Stack spacing={1}>
      <Box sx={{ display: 'flex', gap: 1 }}>
        <Button variant="outlined" onClick={start} disabled={running}>
          Verify the log
        </Button>
        {running && <Button onClick={stop}>Stop</Button>}
      </Box>
      {running && <Progress p={state.progress} />}
      {state.status === 'failed' && <Alert severity="error">{errorText(state.error)}</Alert>}
      {state.status === 'stopped' && (
        <Alert severity="info">The verification was stopped; nothing was concluded.</Alert>
      )}
      {state.status === 'done' && <Report r={state.report} />}
    </Stack>
  );
}

function Report({ r }: { r: VerifyReport }) {
  return (
    <Alert severity={r.ok ? 'success' : 'error'} role="status" data-testid="verify-result">
      {r.ok ? 'The log verifies' : 'The log does not verify'}: {fmtInt(r.events_checked)} events in{' '}
      {fmtInt(r.aggregates_checked)} aggregates, {fmtInt(r.checkpoints_checked ?? 0)} checkpoints
      and {fmtInt(r.anchors_checked ?? 0)} anchors on JetStream checked.
      {r.first_failure && (
        <Typography variant="body2" sx={{ mt: 1, overflowWrap: 'anywhere' }}>
          First bad event: position {r.first_failure.global_position} (
          {r.first_failure.aggregate_type} {r.first_failure.aggregate_id} #
          {r.first_failure.sequence}), {r.first_failure.problem}: {r.first_failure.detail}
        </Typography>
      )}
      {r.first_checkpoint_failure && (
        <Typography variant="body2" sx={{ mt: 1, overflowWrap: 'anywhere' }}>
          First bad {r.first_checkpoint_failure.source === 'anchor' ? 'anchor' : 'checkpoint'}:
          after {fmtInt(r.first_checkpoint_failure.event_count)} events of{' '}
          {r.first_checkpoint_failure.stream}, {r.first_checkpoint_failure.problem}:{' '}
          {r.first_checkpoint_failure.detail}
        </Typography>
      )}
      {r.stream_anchor && r.stream_anchor.result !== 'ok' && (
        <Typography variant="body2" sx={{ mt: 1, overflowWrap: 'anywhere' }}>
          Events stream {r.stream_anchor.stream}: {r.stream_anchor.result}, {r.stream_anchor.detail}
        </Typography>
      )}
    </Alert>
  );
}
