import { memo, useDeferredValue } from 'react';
import { Box, Chip, Paper, Skeleton, Typography } from '@mui/material';
import { ErrorAlert } from '@/components/ErrorAlert';
import { useHealth, type SystemHealth } from '../api/health';

const parts: { key: keyof SystemHealth; label: string }[] = [
  { key: 'database', label: 'PostgreSQL' },
  { key: 'migrations', label: 'Migrations' },
  { key: 'nats', label: 'NATS' },
  { key: 'events_stream', label: 'Events stream' },
  { key: 'sandbox', label: 'Sandbox' },
];

function colour(v: string): 'success' | 'default' | 'error' | 'warning' {
  if (v === 'ok') return 'success';
  if (v === 'not_configured') return 'default';
  if (v === 'pending' || v === 'unknown') return 'warning';
  return 'error';
}

export function HealthCard() {
  const health = useHealth();
  // Rendered deferred, in slices (see DashboardPage).
  const data = useDeferredValue(health.data);
  return <HealthBody data={data} error={health.isError ? health.error : null} />;
}

const HealthBody = memo(function HealthBody({
  data,
  error,
}: {
  data: SystemHealth | undefined;
  error: unknown;
}) {
  return (
    <Paper sx={{ p: { xs: 1.5, sm: 2 } }} id="health" aria-labelledby="health-heading">
      <Box sx={{ display: 'flex', alignItems: 'center', gap: 1, mb: 1.5 }}>
        <Typography id="health-heading" variant="h6" component="h2" sx={{ flexGrow: 1 }}>
          Health
        </Typography>
        {data && (
          <Chip
            size="small"
            color={data.ready ? 'success' : 'error'}
            label={data.ready ? 'Ready' : 'Not ready'}
          />
        )}
      </Box>
      {error ? (
        <ErrorAlert error={error} what="the health" />
      ) : (
        <Box
          component="dl"
          sx={{
            m: 0,
            display: 'grid',
            gap: 1,
            gridTemplateColumns: { xs: '1fr 1fr', sm: 'repeat(5, 1fr)' },
          }}
        >
          {parts.map(({ key, label }) => {
            // While loading, the same grid with a placeholder per chip: nothing moves after.
            const v = data ? String(data[key] ?? 'unknown') : null;
            return (
              <Box key={key}>
                <Typography component="dt" variant="body2" color="text.secondary">
                  {label}
                </Typography>
                <Box component="dd" sx={{ m: 0 }}>
                  {v === null ? (
                    <Skeleton variant="rounded" width={48} height={24} aria-label="Loading" />
                  ) : (
                    <Chip
                      size="small"
                      variant="outlined"
                      color={colour(v)}
                      label={v.replace('_', ' ')}
                    />
                  )}
                </Box>
              </Box>
            );
          })}
        </Box>
      )}
    </Paper>
  );
});
