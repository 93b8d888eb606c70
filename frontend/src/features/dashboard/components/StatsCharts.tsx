import { memo } from 'react';
import { Box, useTheme } from '@mui/material';
import { TimeChart } from '@/components/TimeChart';
import type { Stats } from '../api/stats';

type Point = {
  at: string;
  rps: number;
  errorPct: number;
  p50?: number | null;
  p95?: number | null;
  p99?: number | null;
  eps: number;
};

/** The server's per-minute series as rates per second and shares. */
export function toPoints(stats: Stats): Point[] {
  return stats.series.map((m) => ({
    at: m.minute,
    rps: +(m.requests / 60).toFixed(3),
    errorPct: m.requests ? +((m.server_errors / m.requests) * 100).toFixed(2) : 0,
    p50: m.latency_ms.p50,
    p95: m.latency_ms.p95,
    p99: m.latency_ms.p99,
    eps: +(m.events / 60).toFixed(3),
  }));
}

const latest = (data: Point[], k: keyof Point) => {
  for (let i = data.length - 1; i >= 0; i--) {
    const v = data[i]![k];
    if (typeof v === 'number') return v;
  }
  return undefined;
};
const peak = (data: Point[], k: keyof Point) =>
  Math.max(0, ...data.map((p) => (typeof p[k] === 'number' ? (p[k] as number) : 0)));
const describe = (data: Point[], k: keyof Point, unit = '') =>
  `latest ${latest(data, k) ?? '–'}${unit}, highest ${peak(data, k)}${unit} over the last hour`;

/** Request rate, error rate, latency percentiles and events per second over the last hour. */
function StatsCharts({ stats }: { stats: Stats }) {
  const p = useTheme().palette;
  const data = toPoints(stats);
  return (
    <Box sx={{ display: 'grid', gap: 2, gridTemplateColumns: { xs: '1fr', md: '1fr 1fr' } }}>
      <TimeChart
        title="Requests per second"
        summary={describe(data, 'rps')}
        data={data}
        series={[{ key: 'rps', name: 'req/s', colour: p.primary.main }]}
      />
      <TimeChart
        title="Server error rate (%)"
        summary={describe(data, 'errorPct', '%')}
        data={data}
        unit="%"
        series={[{ key: 'errorPct', name: '5xx %', colour: p.error.main }]}
      />
      <TimeChart
        title="Latency (ms)"
        summary={`p99 ${describe(data, 'p99', ' ms')}`}
        data={data}
        series={[
          { key: 'p50', name: 'p50', colour: p.success.main },
          { key: 'p95', name: 'p95', colour: p.warning.main },
          { key: 'p99', name: 'p99', colour: p.error.main },
        ]}
      />
      <TimeChart
        title="Events per second"
        summary={describe(data, 'eps')}
        data={data}
        series={[{ key: 'eps', name: 'events/s', colour: p.secondary.main }]}
      />
    </Box>
  );
}

// The figures are re-read on every stats frame; the charts redraw only when the series moved.
export default memo(
  StatsCharts,
  (a, b) => JSON.stringify(a.stats.series) === JSON.stringify(b.stats.series),
);
