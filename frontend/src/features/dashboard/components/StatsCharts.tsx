import { memo } from 'react';
import { Box, Typography, useTheme } from '@mui/material';
import {
  CartesianGrid,
  Legend,
  Line,
  LineChart,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from 'recharts';
import { useChartStyle } from '@/components/chartStyle';
import type { Stats } from '../api/stats';

type Point = {
  minute: string;
  rps: number;
  errorPct: number;
  p50?: number;
  p95?: number;
  p99?: number;
  eps: number;
};

/** The server's per-minute series as rates per second and shares. */
export function toPoints(stats: Stats): Point[] {
  return stats.series.map((m) => ({
    minute: m.minute,
    rps: +(m.requests / 60).toFixed(3),
    errorPct: m.requests ? +((m.server_errors / m.requests) * 100).toFixed(2) : 0,
    p50: m.latency_ms.p50 ?? undefined,
    p95: m.latency_ms.p95 ?? undefined,
    p99: m.latency_ms.p99 ?? undefined,
    eps: +(m.events / 60).toFixed(3),
  }));
}

function Chart({
  title,
  data,
  lines,
  unit,
}: {
  title: string;
  data: Point[];
  lines: { key: keyof Point; name: string; colour: string }[];
  unit: string;
}) {
  const s = useChartStyle();
  return (
    <Box component="figure" sx={{ m: 0, minWidth: 0 }} aria-label={title}>
      <Typography component="figcaption" variant="subtitle2" sx={{ mb: 0.5 }}>
        {title}
      </Typography>
      <ResponsiveContainer width="100%" height={180}>
        <LineChart data={data} margin={{ top: 4, right: 8, left: 0, bottom: 0 }}>
          <CartesianGrid {...s.grid} />
          <XAxis dataKey="minute" {...s.timeAxis} />
          <YAxis width={48} unit={unit} {...s.valueAxis} />
          <Tooltip {...s.tooltip} />
          {lines.length > 1 && <Legend />}
          {lines.map((l) => (
            <Line
              key={l.key}
              type="monotone"
              dataKey={l.key}
              name={l.name}
              stroke={l.colour}
              dot={false}
              isAnimationActive={false}
              connectNulls
            />
          ))}
        </LineChart>
      </ResponsiveContainer>
    </Box>
  );
}

/** Request rate, error rate, latency percentiles and events per second over the last hour. */
function StatsCharts({ stats }: { stats: Stats }) {
  const t = useTheme();
  const data = toPoints(stats);
  return (
    <Box sx={{ display: 'grid', gap: 2, gridTemplateColumns: { xs: '1fr', md: '1fr 1fr' } }}>
      <Chart
        title="Requests per second"
        data={data}
        unit=""
        lines={[{ key: 'rps', name: 'req/s', colour: t.palette.primary.main }]}
      />
      <Chart
        title="Server error rate (%)"
        data={data}
        unit="%"
        lines={[{ key: 'errorPct', name: '5xx %', colour: t.palette.error.main }]}
      />
      <Chart
        title="Latency (ms)"
        data={data}
        unit=""
        lines={[
          { key: 'p50', name: 'p50', colour: t.palette.success.main },
          { key: 'p95', name: 'p95', colour: t.palette.warning.main },
          { key: 'p99', name: 'p99', colour: t.palette.error.main },
        ]}
      />
      <Chart
        title="Events per second"
        data={data}
        unit=""
        lines={[{ key: 'eps', name: 'events/s', colour: t.palette.secondary.main }]}
      />
    </Box>
  );
}

// The figures are re-read on every stats frame; the charts redraw only when the series moved.
export default memo(
  StatsCharts,
  (a, b) => JSON.stringify(a.stats.series) === JSON.stringify(b.stats.series),
);
