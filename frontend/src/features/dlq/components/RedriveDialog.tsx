import { useState } from 'react';
import {
  Alert,
  Button,
  Dialog,
  DialogActions,
  DialogContent,
  DialogContentText,
  DialogTitle,
  TextField,
} from '@mui/material';
import { errorText } from '@/components/ErrorAlert';
import { fmtInt } from '@/lib/format';
import { useStartRedrive, type RedriveFilter, type RedriveJob } from '../api/redrive';

/** Confirms a bulk redrive of `count` open entries and starts the job at the chosen rate. */
export function RedriveDialog({
  filter,
  what,
  count,
  onStarted,
  onClose,
}: {
  filter: RedriveFilter;
  what: string;
  count: number;
  onStarted: (job: RedriveJob) => void;
  onClose: () => void;
}) {
  const [rate, setRate] = useState('50');
  const start = useStartRedrive();
  const n = Number(rate);
  const bad = !(n > 0 && n <= 1000) ? 'Between 0.001 and 1,000 messages per second' : undefined;
  return (
    <Dialog open onClose={onClose} aria-labelledby="redrive-title">
      <DialogTitle id="redrive-title">Redrive {what}</DialogTitle>
      <DialogContent>
        <DialogContentText sx={{ mb: 2 }}>
          Requeues the {fmtInt(count)} open {count === 1 ? 'entry' : 'entries'} of {what} (captured
          up to now), oldest first, each through resolve-with-requeue. It can be paused, resumed and
          cancelled, and says what it did with each entry.
        </DialogContentText>
        <TextField
          label="Rate (messages per second)"
          type="number"
          size="small"
          value={rate}
          onChange={(e) => setRate(e.target.value)}
          error={!!bad}
          helperText={bad ?? ' '}
          slotProps={{ htmlInput: { min: 0.001, max: 1000, step: 'any' } }}
        />
        {start.isError && <Alert severity="error">{errorText(start.error)}</Alert>}
      </DialogContent>
      <DialogActions>
        <Button onClick={onClose}>Cancel</Button>
        <Button
          variant="contained"
          disabled={!!bad || start.isPending}
          onClick={() => start.mutate({ filter, rate: n }, { onSuccess: (job) => onStarted(job) })}
        >
          Start redrive
        </Button>
      </DialogActions>
    </Dialog>
  );
}
