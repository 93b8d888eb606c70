import { Box, Typography, useTheme } from '@mui/material';
import { TimeChart } from '@/components/TimeChart';
import { fmtInt } from '@/lib/format';
import type { StatsFrame } from '@/lib/live/client';
import type { Stats } from '../api/stats';
import { useLatestStatsFrame } from '../api/live';

export interface TrendPoint {
  at: string;
  captured: number;
  resolved: number;
}

const minuteOf = (iso: string) => Math.floor(Date.parse(iso) / 60_000);

/**
 * Dead letters captured and resolved per minute over the last hour: `/stats`'s series, with the
 * minutes of the newest `stats` frame over it (the socket's are fresher), and the open count.
 */
export function deadLetterTrend(
  stats: Stats,
  frame: StatsFrame | null,
): { points: TrendPoint[]; open: number } {
  const live = new Map(
    (frame?.dead_letters?.minutes ?? []).map((m) => [minuteOf(m.minute), m] as const),
  );
  const points = stats.series.map((m) => {
    const fresh = live.get(minuteOf(m.minute));
    return {
      at: m.minute,
      captured: fresh?.captured ?? m.dlq_captured,
      resolved: fresh?.resolved ?? m.dlq_resolved,
    };
  });
  return { points, open: frame?.dead_letters?.open ?? stats.open_dlq_entries };
}

/** The alerts card's dead-letter trend: a small bar chart and the hour's totals. */
export function DeadLetterTrend({ stats }: { stats: Stats }) {
  const p = useTheme().palette;
  const frame = useLatestStatsFrame();
  const { points, open } = deadLetterTrend(stats, frame);
  const captured = points.reduce((a, m) => a + m.captured, 0);
  const resolved = points.reduce((a, m) => a + m.resolved, 0);
  const text = `${fmtInt(captured)} captured and ${fmtInt(resolved)} resolved in the last hour, ${fmtInt(open)} open`;
  return (
    <Box data-testid="dlq-trend">
      <TimeChart
        title="Dead letters per minute"
        summary={text}
        height={120}
        data={points}
        series={[
          { key: 'captured', name: 'Captured', colour: p.warning.main, kind: 'bar' },
          { key: 'resolved', name: 'Resolved', colour: p.success.main, kind: 'bar' },
        ]}
      />
      <Typography variant="body2" color="text.secondary" sx={{ mt: 0.5 }}>
        {text}
      </Typography>
    </Box>
  );
}
