import { useEffect, useState } from 'react';
import {
  Button,
  Dialog,
  DialogActions,
  DialogContent,
  DialogTitle,
  Paper,
  Stack,
  Table,
  TableBody,
  TableCell,
  TableContainer,
  TableHead,
  TableRow,
  TextField,
  Typography,
} from '@mui/material';
import { EmptyState } from '@/components/EmptyState';
import { ErrorAlert } from '@/components/ErrorAlert';
import { PermissionButton } from '@/components/PermissionButton';
import { TableSkeleton } from '@/components/Skeletons';
import { fmtDuration, fmtInt } from '@/lib/format';
import { serverFieldError, validate } from '@/lib/forms';
import { perm } from '@/lib/permissions';
import { toast } from '@/lib/ui';
import { useNow } from '@/lib/useNow';
import { commitSchema, useCommit } from '../api/commit';
import type { BudgetRef } from '../api/keys';
import { useRelease } from '../api/release';
import { useReservations, type OpenReservation } from '../api/reservations';

function CommitDialog({
  budget,
  target,
  onClose,
}: {
  budget: BudgetRef;
  target: OpenReservation | null;
  onClose: () => void;
}) {
  const [value, setValue] = useState('');
  const [error, setError] = useState<string>();
  const commit = useCommit(budget);
  useEffect(() => {
    if (target) {
      setValue(String(target.allocated));
      setError(undefined);
    }
  }, [target]);
  const submit = () => {
    if (!target) return;
    const r = validate(commitSchema, {
      reservation_id: target.reservation_id,
      actual_tokens: value,
    });
    setError(r.errors.actual_tokens);
    if (!r.data) return;
    commit.mutate(r.data, {
      onSuccess: (a) => {
        toast(
          `Committed ${fmtInt(a.actual_tokens)} tokens for ${target.task_id}${a.overage ? ` (overage ${fmtInt(a.overage)})` : ''}`,
        );
        onClose();
      },
      onError: (err) => {
        const f = serverFieldError(err, ['actual_tokens']);
        if (f?.field) setError(f.message);
        else toast(`Commit failed: ${f?.message}`, 'error');
      },
    });
  };
  return (
    <Dialog open={!!target} onClose={onClose} aria-labelledby="commit-title">
      <DialogTitle id="commit-title">Commit {target?.task_id}</DialogTitle>
      <DialogContent>
        <TextField
          autoFocus
          margin="dense"
          label="Actual tokens used"
          inputMode="numeric"
          fullWidth
          value={value}
          onChange={(e) => setValue(e.target.value)}
          error={!!error}
          helperText={error ?? `Allocated: ${fmtInt(target?.allocated)}`}
          onKeyDown={(e) => e.key === 'Enter' && submit()}
        />
      </DialogContent>
      <DialogActions>
        <Button onClick={onClose}>Cancel</Button>
        <Button onClick={submit} variant="contained" disabled={commit.isPending}>
          Commit
        </Button>
      </DialogActions>
    </Dialog>
  );
}

export function ReservationsTable({ budget }: { budget: BudgetRef }) {
  const list = useReservations(budget);
  const release = useRelease(budget);
  const [committing, setCommitting] = useState<OpenReservation | null>(null);
  const now = useNow();
  return (
    <Paper sx={{ p: { xs: 1.5, sm: 2 } }}>
      <Typography variant="h6" component="h2" gutterBottom>
        Open reservations{list.data ? ` (${fmtInt(list.data.open ?? list.data.items.length)})` : ''}
      </Typography>
      {list.isPending ? (
        <TableSkeleton rows={3} />
      ) : list.isError ? (
        <ErrorAlert error={list.error} what="the reservations" />
      ) : list.data.items.length === 0 ? (
        <EmptyState title="No open reservations" />
      ) : (
        <TableContainer sx={{ overflowX: 'auto' }}>
          <Table size="small" aria-label="Open reservations">
            <TableHead>
              <TableRow>
                <TableCell>Task</TableCell>
                <TableCell>Model</TableCell>
                <TableCell align="right">Allocated</TableCell>
                <TableCell>Expires in</TableCell>
                <TableCell>Actions</TableCell>
              </TableRow>
            </TableHead>
            <TableBody>
              {list.data.items.map((r) => {
                const left = Date.parse(r.expires_at) - now;
                return (
                  <TableRow key={r.reservation_id} data-task={r.task_id}>
                    <TableCell>{r.task_id}</TableCell>
                    <TableCell>{r.model}</TableCell>
                    <TableCell align="right">{fmtInt(r.allocated)}</TableCell>
                    <TableCell>
                      <time dateTime={r.expires_at} title={r.expires_at}>
                        {left > 0 ? fmtDuration(left) : 'expiring'}
                      </time>
                    </TableCell>
                    <TableCell>
                      <Stack direction="row" spacing={1}>
                        <PermissionButton
                          permission={perm.writeBudget}
                          size="small"
                          variant="outlined"
                          onClick={() => setCommitting(r)}
                          aria-label={`Commit ${r.task_id}`}
                        >
                          Commit
                        </PermissionButton>
                        <PermissionButton
                          permission={perm.writeBudget}
                          size="small"
                          color="warning"
                          disabled={release.isPending}
                          aria-label={`Release ${r.task_id}`}
                          onClick={() =>
                            release.mutate(r.reservation_id, {
                              onSuccess: () => toast(`Released ${r.task_id}`),
                              onError: (e) => toast(`Release failed: ${e.message}`, 'error'),
                            })
                          }
                        >
                          Release
                        </PermissionButton>
                      </Stack>
                    </TableCell>
                  </TableRow>
                );
              })}
            </TableBody>
          </Table>
        </TableContainer>
      )}
      <CommitDialog budget={budget} target={committing} onClose={() => setCommitting(null)} />
    </Paper>
  );
}
