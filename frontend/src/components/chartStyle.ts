import { useTheme } from '@mui/material';

/** Hours and minutes of an ISO time, for chart axes. */
export const fmtClock = (iso: string | number) =>
  new Date(iso).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });

/**
 * Props shared by every time chart (Recharts needs its parts as direct children, so they are
 * shared as props rather than components).
 */
export function useChartStyle() {
  const t = useTheme();
  return {
    grid: { strokeDasharray: '3 3', stroke: t.palette.divider },
    timeAxis: {
      tickFormatter: fmtClock,
      stroke: t.palette.text.secondary,
      minTickGap: 28,
      fontSize: 12,
    },
    valueAxis: { stroke: t.palette.text.secondary, fontSize: 12 },
    tooltip: {
      labelFormatter: (v: unknown) => fmtClock(String(v)),
      contentStyle: {
        background: t.palette.background.paper,
        border: `1px solid ${t.palette.divider}`,
        color: t.palette.text.primary,
      },
    },
    palette: t.palette,
  };
}
