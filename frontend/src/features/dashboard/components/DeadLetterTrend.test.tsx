import { describe, expect, it } from 'vitest';
import { render, screen } from '@testing-library/react';
import { TimeChart } from '@/components/TimeChart';
import type { Stats } from '../api/stats';
import { deadLetterTrend } from './DeadLetterTrend';

const minute = (m: number) => new Date(Date.UTC(2026, 11, 2, 10, m)).toISOString();
const stats = {
  open_dlq_entries: 2,
  series: [0, 1, 2].map((m) => ({ minute: minute(m), dlq_captured: m, dlq_resolved: 0 })),
} as unknown as Stats;

describe('dead-letter trend', () => {
  it("takes /stats's minutes, with the newer stats frame's over them", () => {
    expect(deadLetterTrend(stats, null)).toEqual({
      open: 2,
      points: [
        { at: minute(0), captured: 0, resolved: 0 },
        { at: minute(1), captured: 1, resolved: 0 },
        { at: minute(2), captured: 2, resolved: 0 },
      ],
    });
    const frame = {
      type: 'stats' as const,
      at: minute(2),
      connections: 1,
      events_streamed: 0,
      last_position: 0,
      catch_ups: 0,
      dead_letters: { open: 5, minutes: [{ minute: minute(2), captured: 4, resolved: 1 }] },
    };
    const trend = deadLetterTrend(stats, frame);
    expect(trend.open).toBe(5);
    expect(trend.points[2]).toEqual({ at: minute(2), captured: 4, resolved: 1 });
    expect(trend.points[1]).toEqual({ at: minute(1), captured: 1, resolved: 0 });
  });

  it('is a chart with a text a screen reader can read', () => {
    render(
      <TimeChart
        title="Dead letters per minute"
        summary="3 captured"
        data={[{ at: minute(0), captured: 3 }]}
        series={[{ key: 'captured', name: 'Captured', colour: '#000', kind: 'bar' }]}
      />,
    );
    expect(screen.getByText('Dead letters per minute')).toBeInTheDocument();
  });
});
