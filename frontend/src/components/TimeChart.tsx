import { memo, useEffect, useMemo, useRef, useState, type PointerEvent } from 'react';
import { Box, Typography, useTheme } from '@mui/material';
import { layoutAxes, textMeasure, Y_GAP } from './chartAxes';

// One formatter: toLocaleTimeString builds a new one per call (a third of a chart's render).
// Made on first use, not when the module loads: the first `Intl` object loads ICU (tens of
// milliseconds, ×4 on a slow phone), which made this chunk's evaluation a long task on the
// way to the Dashboard's first paint (lib/format.ts does the same).
let clock: Intl.DateTimeFormat | undefined;

/** Hours and minutes of an ISO time, for chart axes. */
export const fmtClock = (iso: string | number) =>
  (clock ??= new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' })).format(
    new Date(iso),
  );

export interface Series<K extends string> {
  key: K;
  name: string;
  colour: string;
  /**
   * `line` (the default); `step` (a line that holds its value until the next point);
   * `area` (filled, stacked on the areas before it); `bar` (side by side with the other bars).
   */
  kind?: 'line' | 'step' | 'area' | 'bar';
}

type Point<K extends string> = { at: string } & Partial<Record<K, number | null>>;

const H_AXIS = 20;
const PAD_TOP = 6;
const FONT = 12;

/** Up to about `n` round steps from 0 to at least `max`. */
function ticks(max: number, n = 4): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out = [];
  for (let v = 0; v < max + step * 0.999; v += step) out.push(+v.toPrecision(12));
  return out;
}

let compactFmt: Intl.NumberFormat | undefined;
const compact = {
  format: (v: number) =>
    (compactFmt ??= new Intl.NumberFormat(undefined, {
      notation: 'compact',
      maximumFractionDigits: 2,
    })).format(v),
};

/**
 * A time chart drawn as plain SVG: grid, axes, lines, stepped lines, stacked areas and bars, a
 * legend, and the values under the pointer. Small on purpose (the chart library it replaced was
 * 110 KB of gzipped script and a long task per chart); `summary` is what a screen reader hears.
 */
function TimeChartImpl<K extends string>({
  title,
  summary,
  data,
  series,
  height = 180,
  unit = '',
  format = (v: number) => compact.format(v),
}: {
  title: string;
  summary: string;
  data: Point<K>[];
  series: Series<K>[];
  height?: number;
  unit?: string;
  format?: (v: number) => string;
}) {
  const t = useTheme();
  const box = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(0);
  const [hover, setHover] = useState<number | null>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    setWidth(el.clientWidth);
    if (typeof ResizeObserver === 'undefined') return;
    const ro = new ResizeObserver(([e]) => setWidth(Math.round(e!.contentRect.width)));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  const value = (p: Point<K>, k: K) => {
    const v = p[k];
    return typeof v === 'number' && Number.isFinite(v) ? v : null;
  };
  const areas = series.filter((s) => s.kind === 'area');
  const bars = series.filter((s) => s.kind === 'bar');
  const max = useMemo(() => {
    let m = 0;
    for (const p of data) {
      let stacked = 0;
      for (const s of series) {
        const v = value(p, s.key) ?? 0;
        if (s.kind === 'area') stacked += v;
        else m = Math.max(m, v);
      }
      m = Math.max(m, stacked);
    }
    return m;
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [data, series]);
  const yTicks = ticks(max);
  const top = yTicks[yTicks.length - 1]!;
  const label = (v: number) => `${format(v)}${unit}`;
  const n = data.length;
  const fontFamily = t.typography.fontFamily ?? 'sans-serif';
  // The labels' own widths decide the margin and how many time labels fit: none is cut.
  const axes = useMemo(
    () =>
      layoutAxes({
        width,
        n,
        yLabels: yTicks.map(label),
        xLabel: (i) => fmtClock(data[i]!.at),
        measure: textMeasure(fontFamily, FONT),
      }),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [data, width, top, unit, format, fontFamily],
  );
  const { left: yWidth, plotW, x, xTicks } = axes;
  const plotH = height - H_AXIS - PAD_TOP;
  const slot = n > 0 ? plotW / n : 0;
  const y = (v: number) => PAD_TOP + plotH - (v / top) * plotH;

  const paths = useMemo(() => {
    if (!width || !n) return [];
    const out: { key: string; d: string; colour: string; fill: boolean }[] = [];
    const base = new Array<number>(n).fill(0);
    for (const s of areas) {
      const upper = data.map((p, i) => base[i]! + (value(p, s.key) ?? 0));
      const d =
        upper.map((v, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join('') +
        base
          .map((b, i) => `L${x(i).toFixed(1)},${y(b).toFixed(1)}`)
          .reverse()
          .join('') +
        'Z';
      out.push({ key: s.key, d, colour: s.colour, fill: true });
      upper.forEach((v, i) => (base[i] = v));
    }
    for (const s of series) {
      if (s.kind === 'area' || s.kind === 'bar') continue;
      let d = '';
      let pen = false;
      data.forEach((p, i) => {
        const v = value(p, s.key);
        if (v === null) return;
        const px = x(i).toFixed(1);
        const py = y(v).toFixed(1);
        if (!pen) d += `M${px},${py}`;
        else if (s.kind === 'step') d += `H${px}V${py}`;
        else d += `L${px},${py}`;
        pen = true;
      });
      out.push({ key: s.key, d, colour: s.colour, fill: false });
    }
    return out;
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [data, series, axes, top, height]);

  const onMove = (e: PointerEvent<SVGSVGElement>) => {
    const r = e.currentTarget.getBoundingClientRect();
    const i = Math.floor((e.clientX - r.left - yWidth) / (slot || 1));
    setHover(i >= 0 && i < n ? i : null);
  };
  const hovered = hover !== null ? data[hover] : undefined;
  const axis = t.palette.text.secondary;

  return (
    <Box component="figure" sx={{ m: 0, minWidth: 0, position: 'relative' }}>
      <Typography component="figcaption" variant="subtitle2" sx={{ mb: 0.5 }}>
        {title}
      </Typography>
      <div ref={box} style={{ height }}>
        {width > 0 && (
          <svg
            width={width}
            height={height}
            role="img"
            aria-label={`${title}: ${summary}`}
            onPointerMove={onMove}
            onPointerLeave={() => setHover(null)}
            style={{ display: 'block', touchAction: 'pan-y' }}
          >
            {yTicks.map((v) => (
              <g key={v}>
                <line
                  x1={yWidth}
                  x2={width - 4}
                  y1={y(v)}
                  y2={y(v)}
                  stroke={t.palette.divider}
                  strokeDasharray="3 3"
                />
                <text x={yWidth - Y_GAP} y={y(v) + 4} textAnchor="end" fontSize={FONT} fill={axis}>
                  {label(v)}
                </text>
              </g>
            ))}
            {xTicks.map(({ i, at, anchor }) => (
              <text key={i} x={at} y={height - 4} textAnchor={anchor} fontSize={FONT} fill={axis}>
                {fmtClock(data[i]!.at)}
              </text>
            ))}
            {bars.map((s, b) =>
              data.map((p, i) => {
                const v = value(p, s.key);
                if (!v) return null;
                const w = Math.max(1, (slot * 0.8) / bars.length);
                return (
                  <rect
                    key={`${s.key}${i}`}
                    x={x(i) - (slot * 0.8) / 2 + b * w}
                    y={y(v)}
                    width={w}
                    height={Math.max(1, y(0) - y(v))}
                    fill={s.colour}
                  />
                );
              }),
            )}
            {paths.map((p) => (
              <path
                key={p.key}
                d={p.d}
                fill={p.fill ? p.colour : 'none'}
                fillOpacity={p.fill ? 0.3 : undefined}
                stroke={p.colour}
                strokeWidth={p.fill ? 1 : 1.5}
              />
            ))}
            {hover !== null && (
              <line
                x1={x(hover)}
                x2={x(hover)}
                y1={PAD_TOP}
                y2={PAD_TOP + plotH}
                stroke={t.palette.text.secondary}
              />
            )}
          </svg>
        )}
      </div>
      {hovered && (
        <Box
          aria-hidden
          sx={{
            position: 'absolute',
            top: 24,
            [hover! > n / 2 ? 'left' : 'right']: 8,
            px: 1,
            py: 0.5,
            fontSize: 12,
            bgcolor: 'background.paper',
            border: 1,
            borderColor: 'divider',
            borderRadius: 1,
            pointerEvents: 'none',
          }}
        >
          <div>{fmtClock(hovered.at)}</div>
          {series.map((s) => {
            const v = value(hovered, s.key);
            return (
              <div key={s.key} style={{ color: s.colour }}>
                {s.name}: {v === null ? '–' : label(v)}
              </div>
            );
          })}
        </Box>
      )}
      {series.length > 1 && (
        <Box
          component="ul"
          sx={{
            display: 'flex',
            flexWrap: 'wrap',
            justifyContent: 'center',
            gap: 2,
            m: 0,
            mt: 0.5,
            p: 0,
            listStyle: 'none',
            fontSize: 13,
          }}
        >
          {series.map((s) => (
            <li key={s.key} style={{ display: 'flex', alignItems: 'center', gap: 4 }}>
              <span
                aria-hidden
                style={{ width: 12, height: 3, background: s.colour, display: 'inline-block' }}
              />
              {s.name}
            </li>
          ))}
        </Box>
      )}
    </Box>
  );
}

export const TimeChart = memo(TimeChartImpl) as typeof TimeChartImpl;
