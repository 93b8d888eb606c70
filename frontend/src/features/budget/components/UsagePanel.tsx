import { lazy, Suspense } from 'react';
import { Alert, Box, Paper, Typography } from '@mui/material';
import { EmptyState } from '@/components/EmptyState';
import { ErrorAlert } from '@/components/ErrorAlert';
import { CardSkeleton } from '@/components/Skeletons';
import { fmtDuration, fmtInt, fmtTime } from '@/lib/format';
import type { BudgetRef } from '../api/keys';
import { useUsage } from '../api/usage';

const UsageChart = lazy(() => import('./UsageChart'));

/** The usage chart, the burn rate and when the budget runs out at that rate (the server's figures). */
export function UsagePanel({ budget }: { budget: BudgetRef }) {
  const usage = useUsage(budget, 60);
  const u = usage.data;
  const exhaustion = u?.projected_exhaustion_at ?? null;
  return (
    <Paper sx={{ p: { xs: 1.5, sm: 2 } }}>
      <Typography variant="h6" component="h2" gutterBottom>
        Usage over the last hour
      </Typography>
      {usage.isPending ? (
        <CardSkeleton height={260} />
      ) : usage.isError ? (
        <ErrorAlert error={usage.error} what="the usage" />
      ) : !u || u.points.length === 0 ? (
        <EmptyState title="No usage recorded in the last hour" />
      ) : (
        <>
          <Box sx={{ display: 'flex', gap: 3, flexWrap: 'wrap', mb: 1 }}>
            <Box>
              <Typography variant="body2" color="text.secondary">
                Burn rate
              </Typography>
              <Typography variant="h6" component="p" data-testid="burn-rate">
                {fmtInt(Math.round(u.burn_rate_tokens_per_hour))} tokens/h
              </Typography>
            </Box>
            <Box>
              <Typography variant="body2" color="text.secondary">
                Runs out at this rate
              </Typography>
              <Typography variant="h6" component="p" data-testid="exhaustion">
                {exhaustion
                  ? `${fmtTime(exhaustion)} (in ${fmtDuration(Date.parse(exhaustion) - Date.now())})`
                  : 'not at this rate'}
              </Typography>
            </Box>
          </Box>
          {exhaustion && Date.parse(exhaustion) - Date.now() < 3_600_000 && (
            <Alert severity="warning" sx={{ mb: 1 }}>
              At the current rate this budget runs out within the hour.
            </Alert>
          )}
          <Suspense fallback={<CardSkeleton height={260} />}>
            <UsageChart usage={u} />
          </Suspense>
        </>
      )}
    </Paper>
  );
}
