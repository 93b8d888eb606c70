// The axes of `TimeChart`: where the plot starts so that the value labels fit at its left, and
// which time labels fit under it, from the labels' own widths. A pure function of the sizes
// and a text measure, so that a test can check every label stays inside the chart at any width.

/** The pixel width of `text` at the chart's label size. */
export type Measure = (text: string) => number;

/**
 * An upper bound of a label's width at `fontSize`, per character class, from DejaVu Sans (the
 * widest of the usual sans-serif system fonts; Debian's default): digits 0.64 em, punctuation
 * and spaces 0.34, m/w/M/W/% 1.0, other capitals 0.78, other small letters 0.64, anything else
 * 1.0. Used where text cannot be measured (jsdom) and in tests.
 */
export function estimateWidth(text: string, fontSize = 12): number {
  let em = 0;
  for (const ch of text) {
    if (ch >= '0' && ch <= '9') em += 0.64;
    else if (" .,:;/'’-".includes(ch)) em += 0.34;
    else if ('mwMW%'.includes(ch)) em += 1;
    else if (ch >= 'A' && ch <= 'Z') em += 0.78;
    else if (ch >= 'a' && ch <= 'z') em += 0.64;
    else em += 1;
  }
  return em * fontSize;
}

let canvas: OffscreenCanvasRenderingContext2D | null | undefined;

/**
 * Measures with the browser's own text metrics (the font the SVG inherits), or estimates
 * (`estimateWidth`) where there are none (jsdom has no OffscreenCanvas).
 */
export function textMeasure(fontFamily: string, fontSize = 12): Measure {
  if (canvas === undefined)
    canvas =
      typeof OffscreenCanvas === 'undefined' ? null : new OffscreenCanvas(1, 1).getContext('2d');
  const ctx = canvas;
  if (!ctx) return (s) => estimateWidth(s, fontSize);
  const font = `${fontSize}px ${fontFamily}`;
  const cache = new Map<string, number>();
  return (s) => {
    let w = cache.get(s);
    if (w === undefined) {
      ctx.font = font;
      w = Math.ceil(ctx.measureText(s).width);
      cache.set(s, w);
    }
    return w;
  };
}

/** A time label under the plot: the point it names, where it is anchored and its extent. */
export interface XTick {
  i: number;
  at: number;
  anchor: 'start' | 'middle' | 'end';
  from: number;
  to: number;
}

export interface AxisLayout {
  /** Where the plot starts; the value labels end `Y_GAP` px left of it, right-aligned. */
  left: number;
  /** The plot's width (from `left` to `RIGHT_PAD` px before the edge). */
  plotW: number;
  /** The x of point `i`'s centre. */
  x: (i: number) => number;
  xTicks: XTick[];
}

/** Between a value label and the plot. */
export const Y_GAP = 6;
/** Kept clear at each edge of the chart. */
const EDGE = 2;
const RIGHT_PAD = 4;
/** At least this much between two time labels. */
const X_GAP = 8;

/**
 * Lays out the axes of a chart `width` px wide with `n` points: the value labels' column is as
 * wide as the widest label; time labels, from the newest backwards, evenly spaced as their
 * widths allow, each kept whole inside the chart and clear of the one before (fewer labels
 * when the chart is narrow; none when not even one fits).
 */
export function layoutAxes({
  width,
  n,
  yLabels,
  xLabel,
  measure,
}: {
  width: number;
  n: number;
  yLabels: string[];
  xLabel: (i: number) => string;
  measure: Measure;
}): AxisLayout {
  const yW = Math.max(0, ...yLabels.map(measure));
  const left = Math.ceil(EDGE + yW + Y_GAP);
  const plotW = Math.max(0, width - left - RIGHT_PAD);
  const slot = n > 0 ? plotW / n : 0;
  const x = (i: number) => left + slot * (i + 0.5);
  const xTicks: XTick[] = [];
  if (!n || !plotW) return { left, plotW, x, xTicks };
  // The stride: labels as wide as the widest of them side by side, with room for the newest
  // one, which may be pushed left to end inside the chart.
  const widths = Array.from({ length: n }, (_, i) => measure(xLabel(i)));
  const widest = Math.max(...widths);
  const shift = Math.max(0, widest / 2 - slot / 2 - (RIGHT_PAD - EDGE));
  const every = Math.max(1, Math.ceil((widest + X_GAP + shift) / slot));
  const max = width - EDGE;
  let limit = max; // the next label must end before this
  for (let i = n - 1; i >= 0; i -= every) {
    const w = widths[i]!;
    const c = x(i);
    let tick: XTick;
    if (c + w / 2 > max) tick = { i, at: max, anchor: 'end', from: max - w, to: max };
    else if (c - w / 2 < left) tick = { i, at: left, anchor: 'start', from: left, to: left + w };
    else tick = { i, at: c, anchor: 'middle', from: c - w / 2, to: c + w / 2 };
    if (tick.from < left || tick.to > limit) continue;
    xTicks.push(tick);
    limit = tick.from - X_GAP;
  }
  return { left, plotW, x, xTicks };
}
