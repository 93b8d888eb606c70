import { lazy, memo, Suspense, useDeferredValue, useMemo } from 'react';
import { Link as RouterLink } from 'react-router-dom';
import { Alert, Box, Button, Paper, Stack, Typography } from '@mui/material';
import { EmptyState } from '@/components/EmptyState';
import { ErrorAlert } from '@/components/ErrorAlert';
import { Figure } from '@/components/Figure';
import { CardSkeleton } from '@/components/Skeletons';
import { fmtInt } from '@/lib/format';
import { perm } from '@/lib/permissions';
import { useCan } from '@/lib/session';
import type { Topic } from '@/lib/live/client';
import { useAlertsSource } from '../api/governance';
import { useHealth } from '../api/health';
import { useDashboardLive, useLatestStatsFrame } from '../api/live';
import { usePipeline } from '../api/pipeline';
import { useStats, type Stats } from '../api/stats';
import { buildAlerts } from './alerts';
import { DeadLetterTrend } from './DeadLetterTrend';
import { HealthCard } from './HealthCard';

const StatsCharts = lazy(() => import('./StatsCharts'));
/** The dead-letter trend's height (chart, legend and totals), kept while it loads. */
const TREND_HEIGHT = 196;

function LiveConnections() {
  const frame = useLatestStatsFrame();
  return <Figure label="Live connections" value={frame ? fmtInt(frame.connections) : '–'} />;
}

/**
 * The page renders once; each card reads its own queries, so an answer re-renders the card that
 * shows it, not the page (each render of MUI components costs, most on a slow phone).
 */
export default function DashboardPage() {
  const canGovernance = useCan(perm.readGovernance);
  const topics: Topic[] = ['stats', 'budget', 'breakers'];
  if (useCan(perm.readDlq)) topics.push('dlq');
  useDashboardLive(topics);
  return (
    <Stack spacing={3}>
      <Typography variant="h4" component="h1">
        Dashboard
      </Typography>
      <HealthCard />
      <AlertsCard canGovernance={canGovernance} />
      <TrafficCard />
    </Stack>
  );
}

/**
 * The cards render answers deferred: an answer re-renders the card at once with the values it
 * had (its body is memoised, so nothing happens), then renders the new values as a transition,
 * in slices that leave the main thread free in between instead of one long task.
 */
function AlertsCard({ canGovernance }: { canGovernance: boolean }) {
  const stats = useStats();
  const health = useHealth();
  const pipeline = usePipeline();
  const budgets = useAlertsSource(canGovernance);
  // One change from the placeholder (the height of "Nothing needs attention") to the list,
  // once every source has answered: alerts do not come in one by one.
  const loading =
    (budgets.isPending && canGovernance) ||
    stats.isPending ||
    health.isPending ||
    pipeline.isPending;
  const input = useDeferredValue(
    useMemo(
      () => ({
        loading,
        health: health.data,
        stats: stats.data,
        pipeline: pipeline.data,
        budgets: budgets.data,
      }),
      [loading, health.data, stats.data, pipeline.data, budgets.data],
    ),
  );
  return <AlertsBody {...input} />;
}

const AlertsBody = memo(function AlertsBody({
  loading,
  ...sources
}: Parameters<typeof buildAlerts>[0] & { loading: boolean }) {
  const alerts = buildAlerts(sources);
  const s = sources.stats;
  return (
    <Paper sx={{ p: { xs: 1.5, sm: 2 } }} aria-labelledby="alerts-heading">
      <Typography id="alerts-heading" variant="h6" component="h2" gutterBottom>
        Alerts
      </Typography>
      {loading ? (
        <CardSkeleton height={92} />
      ) : alerts.length === 0 ? (
        <EmptyState title="Nothing needs attention" />
      ) : (
        <Stack spacing={1} component="ul" sx={{ p: 0, m: 0, listStyle: 'none' }}>
          {alerts.map((a) => (
            <li key={a.id}>
              <Alert
                severity={a.severity}
                action={
                  <Button component={RouterLink} to={a.to} size="small" color="inherit">
                    {a.action}
                  </Button>
                }
              >
                {a.text}
              </Alert>
            </li>
          ))}
        </Stack>
      )}
      <Box sx={{ mt: 2, minHeight: TREND_HEIGHT }}>
        {s ? <DeadLetterTrend stats={s} /> : <CardSkeleton height={TREND_HEIGHT} />}
      </Box>
    </Paper>
  );
});

function TrafficCard() {
  const stats = useStats();
  const s = useDeferredValue(stats.data);
  return <TrafficBody s={s} error={stats.isError ? stats.error : null} />;
}

const TrafficBody = memo(function TrafficBody({
  s,
  error,
}: {
  s: Stats | undefined;
  error: unknown;
}) {
  return (
    <Paper sx={{ p: { xs: 1.5, sm: 2 } }} aria-labelledby="traffic-heading">
      <Typography id="traffic-heading" variant="h6" component="h2" gutterBottom>
        Traffic over the last hour
      </Typography>
      {error ? (
        <ErrorAlert error={error} what="the stats" />
      ) : !s ? (
        <CardSkeleton height={200} />
      ) : (
        <Stack spacing={2}>
          <Box
            sx={{
              display: 'grid',
              gap: 2,
              gridTemplateColumns: {
                xs: 'repeat(2, 1fr)',
                sm: 'repeat(3, 1fr)',
                lg: 'repeat(6, 1fr)',
              },
            }}
          >
            <Figure
              label={`Requests/s (${s.requests.window_minutes} min)`}
              value={s.requests.requests_per_second.toFixed(2)}
            />
            <Figure label="Server errors" value={`${(s.requests.error_rate * 100).toFixed(2)}%`} />
            <Figure
              label="Latency p50 / p95 / p99"
              value={
                [s.requests.latency_ms.p50, s.requests.latency_ms.p95, s.requests.latency_ms.p99]
                  .map((v) => (v === undefined || v === null ? '–' : `${v}`))
                  .join(' / ') + ' ms'
              }
            />
            <Figure label="Events/s" value={s.events_per_second.toFixed(2)} />
            <Figure label="Budgets" value={fmtInt(s.budgets.budgets)} />
            <LiveConnections />
          </Box>
          <Suspense fallback={<CardSkeleton height={400} />}>
            <StatsCharts stats={s} />
          </Suspense>
        </Stack>
      )}
    </Paper>
  );
});
