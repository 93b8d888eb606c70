import { Box, Paper, Stack, Typography } from '@mui/material';
import { EmptyState } from '@/components/EmptyState';
import { ErrorAlert } from '@/components/ErrorAlert';
import { CardSkeleton } from '@/components/Skeletons';
import { Figure } from '@/components/Figure';
import { UtilisationBar } from '@/components/UtilisationBar';
import { fmtInt } from '@/lib/format';
import { ApiError } from '@/lib/http';
import type { BudgetRef } from '../api/keys';
import { useBudgetState } from '../api/state';
import { LimitForm } from './LimitForm';

export function StateCard({ budget }: { budget: BudgetRef }) {
  const state = useBudgetState(budget);
  const noLimit = state.error instanceof ApiError && state.error.status === 404;
  return (
    <Paper sx={{ p: { xs: 1.5, sm: 2 } }} aria-labelledby="state-heading">
      <Typography id="state-heading" variant="h6" component="h2" gutterBottom>
        {budget.tenant_id} / {budget.project_id}
      </Typography>
      {state.isPending ? (
        <CardSkeleton />
      ) : noLimit ? (
        <EmptyState title="No limit set for this budget">
          Every reservation is denied until an admin sets one.
        </EmptyState>
      ) : state.isError ? (
        <ErrorAlert error={state.error} what="the budget" />
      ) : (
        <Stack spacing={2}>
          <Box
            sx={{
              display: 'grid',
              gap: 2,
              gridTemplateColumns: { xs: 'repeat(2, 1fr)', sm: 'repeat(5, 1fr)' },
            }}
          >
            <Figure label="Limit" value={fmtInt(state.data.total)} />
            <Figure label="Used" value={fmtInt(state.data.used)} />
            <Figure label="Reserved" value={fmtInt(state.data.reserved)} />
            <Figure label="Available" value={fmtInt(state.data.available)} />
            <Figure label="Open reservations" value={fmtInt(state.data.open_reservations)} />
          </Box>
          <UtilisationBar
            percent={
              state.data.total > 0
                ? ((state.data.used + state.data.reserved) / state.data.total) * 100
                : null
            }
          />
        </Stack>
      )}
      <Box sx={{ mt: 2 }}>
        <LimitForm budget={budget} current={state.data?.total} />
      </Box>
    </Paper>
  );
}
