import { describe, expect, it } from 'vitest';
import { fmtInt } from './format';

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
