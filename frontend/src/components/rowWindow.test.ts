import { describe, expect, it } from 'vitest';
import { rowWindow } from './rowWindow';

describe('rowWindow', () => {
  it('is the rows in view and the overscan on each side', () => {
    // 400 px of 40 px rows from row 100: rows 100-110 show (110 in part), 8 more each side.
    expect(rowWindow(4000, 400, 40, 1000)).toEqual({ first: 92, last: 118 });
  });

  it('stops at the first and the last row', () => {
    expect(rowWindow(0, 400, 40, 1000)).toEqual({ first: 0, last: 18 });
    expect(rowWindow(39_600, 400, 40, 1000)).toEqual({ first: 982, last: 999 });
  });

  it('shows the first rows before the scroller has a height', () => {
    expect(rowWindow(0, 0, 40, 1000)).toEqual({ first: 0, last: 8 });
  });

  it('is empty without rows, and within the rows left when the list shrank under the view', () => {
    expect(rowWindow(0, 400, 40, 0)).toEqual({ first: 0, last: -1 });
    // Scrolled far down a list that then lost rows: the last rows, not rows past its end.
    expect(rowWindow(40_000, 400, 40, 10)).toEqual({ first: 9, last: 9 });
  });

  it('ignores an overscrolled (negative) offset', () => {
    expect(rowWindow(-120, 400, 40, 1000)).toEqual({ first: 0, last: 18 });
  });
});
