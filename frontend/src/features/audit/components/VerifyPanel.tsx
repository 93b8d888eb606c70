import { Alert, Box, Button, LinearProgress, Stack, Typography } from '@mui/material';
import { errorText } from '@/components/ErrorAlert';
import { fmtInt } from '@/lib/format';
import { useVerify } from '../api/verify';

/** Runs the chain verification and shows the result, or the first event that fails it. */
export function VerifyPanel() {
  const verify = useVerify();
  const r = verify.data;
  return (
    <Stack spacing={1}>
      <Box>
        <Button variant="outlined" onClick={() => verify.mutate()} disabled={verify.isPending}>
          Verify the log
        </Button>
      </Box>
      {verify.isPending && (
        <Box role="status">
          <Typography variant="body2">
            Recomputing every hash chain and the running hash over the whole log…
          </Typography>
          <LinearProgress aria-label="Verifying" />
        </Box>
      )}
      {verify.isError && <Alert severity="error">{errorText(verify.error)}</Alert>}
      {r && !verify.isPending && (
        <Alert severity={r.ok ? 'success' : 'error'} role="status" data-testid="verify-result">
          {r.ok ? 'The log verifies' : 'The log does not verify'}: {fmtInt(r.events_checked)} events
          in {fmtInt(r.aggregates_checked)} aggregates, {fmtInt(r.checkpoints_checked ?? 0)}{' '}
          checkpoints checked.
          {r.first_failure && (
            <Typography variant="body2" sx={{ mt: 1, overflowWrap: 'anywhere' }}>
              First bad event: position {r.first_failure.global_position} (
              {r.first_failure.aggregate_type} {r.first_failure.aggregate_id} #
              {r.first_failure.sequence}), {r.first_failure.problem}: {r.first_failure.detail}
            </Typography>
          )}
          {r.first_checkpoint_failure && (
            <Typography variant="body2" sx={{ mt: 1, overflowWrap: 'anywhere' }}>
              First bad checkpoint: after {fmtInt(r.first_checkpoint_failure.event_count)} events of{' '}
              {r.first_checkpoint_failure.stream}, {r.first_checkpoint_failure.problem}
            </Typography>
          )}
        </Alert>
      )}
    </Stack>
  );
}
