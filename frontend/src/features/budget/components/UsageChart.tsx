import {
  Area,
  AreaChart,
  CartesianGrid,
  Legend,
  Line,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from 'recharts';
import { useChartStyle } from '@/components/chartStyle';
import type { Usage } from '../api/usage';

/** Used and reserved over time, with the limit as a line. Loaded with the Budget page only. */
export default function UsageChart({ usage }: { usage: Usage }) {
  const s = useChartStyle();
  const area = (key: 'used' | 'reserved', name: string, colour: string) => (
    <Area
      type="monotone"
      dataKey={key}
      name={name}
      stackId="1"
      stroke={colour}
      fill={colour}
      fillOpacity={0.3}
      isAnimationActive={false}
    />
  );
  return (
    <ResponsiveContainer width="100%" height={260}>
      <AreaChart data={usage.points} margin={{ top: 8, right: 8, left: 0, bottom: 0 }}>
        <CartesianGrid {...s.grid} />
        <XAxis dataKey="at" {...s.timeAxis} />
        <YAxis width={64} {...s.valueAxis} />
        <Tooltip {...s.tooltip} />
        <Legend />
        {area('used', 'Used', s.palette.primary.main)}
        {area('reserved', 'Reserved', s.palette.warning.main)}
        <Line
          type="stepAfter"
          dataKey="total"
          name="Limit"
          stroke={s.palette.error.main}
          dot={false}
          isAnimationActive={false}
        />
      </AreaChart>
    </ResponsiveContainer>
  );
}
