import { useTheme } from '@mui/material';
import { TimeChart } from '@/components/TimeChart';
import { fmtInt } from '@/lib/format';
import type { Usage } from '../api/usage';

/** Used and reserved over time (stacked), with the limit as a stepped line. */
export default function UsageChart({ usage }: { usage: Usage }) {
  const p = useTheme().palette;
  const last = usage.points[usage.points.length - 1];
  const summary = last
    ? `now ${fmtInt(last.used)} used and ${fmtInt(last.reserved)} reserved` +
      (last.total !== undefined && last.total !== null ? ` of ${fmtInt(last.total)}` : '')
    : 'no usage';
  return (
    <TimeChart
      title="Tokens used and reserved"
      summary={summary}
      height={260}
      data={usage.points}
      series={[
        { key: 'used', name: 'Used', colour: p.primary.main, kind: 'area' },
        { key: 'reserved', name: 'Reserved', colour: p.warning.main, kind: 'area' },
        { key: 'total', name: 'Limit', colour: p.error.main, kind: 'step' },
      ]}
    />
  );
}
