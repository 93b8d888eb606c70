import { describe, expect, it } from 'vitest';
import { estimateWidth, layoutAxes, Y_GAP, type Measure } from './chartAxes';

const clock = (i: number) => {
  const h = 1 + (Math.floor(i / 60) % 12);
  return `${String(h).padStart(2, '0')}:${String(i % 60).padStart(2, '0')} PM`;
};
// A wide font (every character 0.75 em at 12 px) and the estimate itself.
const measures: Record<string, Measure> = {
  wide: (s) => s.length * 9,
  estimate: (s) => estimateWidth(s),
};
const yLabelSets = [
  ['0', '1', '2'],
  ['0%', '25%', '50%', '75%', '100%'],
  ['0', '2.5K', '5K', '7.5K', '10K'],
  ['0', '250M', '500M', '750M', '1B'],
];

describe('chart axes', () => {
  for (const [name, measure] of Object.entries(measures)) {
    it(`keeps every label whole inside the chart at any width (${name} font)`, () => {
      for (const width of [80, 120, 180, 240, 300, 358, 420, 600, 900, 1400]) {
        for (const n of [1, 2, 7, 60]) {
          for (const yLabels of yLabelSets) {
            const a = layoutAxes({ width, n, yLabels, xLabel: clock, measure });
            const what = `${width} px, ${n} points, ${yLabels.at(-1)}`;
            // Value labels: right-aligned Y_GAP px before the plot, none starting before 0.
            for (const l of yLabels) expect(a.left - Y_GAP - measure(l), what).toBeGreaterThan(0);
            // Time labels: inside the chart, right of the value labels, none over another.
            const ticks = [...a.xTicks].sort((p, q) => p.from - q.from);
            ticks.forEach((t, k) => {
              expect(t.to - t.from, what).toBeCloseTo(measure(clock(t.i)));
              expect(t.from, what).toBeGreaterThanOrEqual(a.left);
              expect(t.to, what).toBeLessThanOrEqual(width);
              if (k > 0) expect(t.from, what).toBeGreaterThan(ticks[k - 1]!.to);
            });
            // Wherever one label fits under the plot, at least one is shown.
            if (a.plotW >= measure(clock(0)) + 4) expect(ticks.length, what).toBeGreaterThan(0);
          }
        }
      }
    });
  }

  it('gives the value labels the room they need: wide labels, a wider margin', () => {
    const narrow = layoutAxes({
      width: 300,
      n: 60,
      yLabels: ['0', '5'],
      xLabel: clock,
      measure: measures.wide!,
    });
    const wide = layoutAxes({
      width: 300,
      n: 60,
      yLabels: ['0', '250M', '1,000,000'],
      xLabel: clock,
      measure: measures.wide!,
    });
    expect(wide.left - narrow.left).toBe(9 * 8);
    expect(wide.plotW).toBe(narrow.plotW - 9 * 8);
  });

  it('shows fewer time labels on a narrow chart, evenly spaced, the newest last', () => {
    const at = (width: number) =>
      layoutAxes({ width, n: 60, yLabels: ['0', '10'], xLabel: clock, measure: measures.wide! })
        .xTicks;
    const wide = at(1000);
    const narrow = at(300);
    expect(narrow.length).toBeLessThan(wide.length);
    expect(narrow.length).toBeGreaterThanOrEqual(2);
    expect(wide[0]!.i).toBe(59);
    expect(narrow[0]!.i).toBe(59);
    const steps = new Set(wide.slice(1).map((t, k) => wide[k]!.i - t.i));
    expect(steps.size).toBe(1);
  });

  it('estimates widths no narrower than DejaVu Sans draws them', () => {
    // DejaVu Sans advances (per 2048 units) at 12 px: "100%" = 3 × 1303 + 1946; "12:59 PM".
    const px = (units: number) => (units / 2048) * 12;
    expect(estimateWidth('100%')).toBeGreaterThanOrEqual(px(3 * 1303 + 1946));
    expect(estimateWidth('12:59 PM')).toBeGreaterThanOrEqual(
      px(4 * 1303 + 690 + 651 + 1235 + 1767),
    );
  });
});
