import { Alert, Box, LinearProgress, Stack, Typography } from '@mui/material';
import { errorText } from '@/components/ErrorAlert';
import { PermissionButton } from '@/components/PermissionButton';
import { fmtInt } from '@/lib/format';
import { perm } from '@/lib/permissions';
import { useCancelRedrive } from '../api/redriveCancel';
import { useRedriveJob } from '../api/redriveJob';

/** A redrive job's live progress: moved, skipped, failed of all, with cancel while it runs. */
export function RedriveProgress({ id, onDismiss }: { id: string; onDismiss: () => void }) {
  const job = useRedriveJob(id);
  const cancel = useCancelRedrive();
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
  const filter = [j.filter.subject, j.filter.error_contains && `“${j.filter.error_contains}”`]
    .filter(Boolean)
    .join(' · ');
  return (
    <Alert
      severity={j.failed > 0 ? 'warning' : running ? 'info' : 'success'}
      onClose={running ? undefined : onDismiss}
      data-testid="redrive-progress"
      data-state={j.state}
    >
      <Stack spacing={1} sx={{ minWidth: { xs: 240, sm: 420 } }}>
        <Typography>
          Redrive {running ? 'running' : j.state}
          {filter ? ` (${filter})` : ''} at {j.rate}/s: {fmtInt(j.moved)} requeued,{' '}
          {fmtInt(j.skipped)} skipped, {fmtInt(j.failed)} failed, {fmtInt(j.remaining)} to go
        </Typography>
        <Box sx={{ display: 'flex', alignItems: 'center', gap: 1 }}>
          <LinearProgress
            variant="determinate"
            value={pct}
            sx={{ flexGrow: 1, height: 8, borderRadius: 4 }}
            aria-label="Redrive progress"
          />
          <Typography variant="body2">{pct}%</Typography>
        </Box>
        {j.last_error && <Typography variant="body2">Last error: {j.last_error}</Typography>}
        {running && (
          <Box>
            <PermissionButton
              permission={perm.writeDlq}
              size="small"
              variant="outlined"
              disabled={cancel.isPending}
              onClick={() => cancel.mutate(j.id)}
            >
              Cancel redrive
            </PermissionButton>
          </Box>
        )}
      </Stack>
    </Alert>
  );
}
