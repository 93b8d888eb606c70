import { describe, expect, it } from 'vitest';
import { auditFilter, readAuditParams, writeAuditParams } from './filters';

describe('audit filters in the URL', () => {
  it('round-trips every filter, the live toggle and the open event', () => {
    const q = 'aggregate_type=Budget&aggregate_id=a%2Fb&event_type=X&actor=ops&live=1&event=42';
    const p = readAuditParams(new URLSearchParams(q));
    expect(p).toMatchObject({ aggregate_id: 'a/b', actor: 'ops', live: true, event: 42 });
    expect(writeAuditParams(p).toString()).toBe(q);
  });

  it('sends only what is set, times as RFC 3339', () => {
    const f = auditFilter(
      readAuditParams(new URLSearchParams('actor=%20ops%20&from=2026-01-01T00:00')),
    );
    expect(f).toEqual({
      aggregate_type: undefined,
      aggregate_id: undefined,
      event_type: undefined,
      actor: 'ops',
      from: new Date('2026-01-01T00:00').toISOString(),
      to: undefined,
    });
  });
});
