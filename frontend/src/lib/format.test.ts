import { describe, expect, it } from 'vitest';
import { fmtInt, fmtStamp } from './format';

describe('fmtInt', () => {
  it('groups integers as Intl.NumberFormat("en") does, without making one', () => {
    const intl = new Intl.NumberFormat('en');
    const values = [0, 7, 12, 999, 1000, 1001, 65536, 999_999, 1_000_000, 123_456_789];
    for (const v of [...values, ...values.map((x) => -x), Number.MAX_SAFE_INTEGER])
      expect(fmtInt(v)).toBe(intl.format(v === 0 ? 0 : v));
  });

  it('leaves the rest to Intl, and shows a dash for nothing', () => {
    expect(fmtInt(1234.5678)).toBe('1,234.568');
    expect(fmtInt(1e21)).toBe(new Intl.NumberFormat('en').format(1e21));
    expect(fmtInt(null)).toBe('–');
    expect(fmtInt(undefined)).toBe('–');
  });
});

describe('fmtStamp', () => {
  it('writes the local date and time, zero-padded, without Intl', () => {
    const d = new Date(2026, 0, 5, 7, 8, 9);
    expect(fmtStamp(d.toISOString())).toBe('2026-01-05 07:08:09');
    const e = new Date(2026, 11, 31, 23, 59, 58);
    expect(fmtStamp(e.toISOString())).toBe('2026-12-31 23:59:58');
  });

  it('leaves what is no time as it is', () => {
    expect(fmtStamp('not a time')).toBe('not a time');
  });
});
