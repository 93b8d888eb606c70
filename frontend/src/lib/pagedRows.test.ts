import { describe, expect, it } from 'vitest';
import { pagedRows } from './pagedRows';

describe('pagedRows', () => {
  // Pages as the lists read them: a small first page, then full ones, an empty one, a short last.
  const pages = [[0, 1], [2, 3, 4], [], [5, 6, 7], [8]];
  const rows = pagedRows(pages);

  it('counts every page', () => {
    expect(rows.length).toBe(9);
    expect(pagedRows([]).length).toBe(0);
  });

  it('finds each row at its index across pages, as one array would', () => {
    const flat = pages.flat();
    for (let i = 0; i < flat.length; i++) expect(rows.at(i)).toBe(flat[i]);
  });

  it('has nothing past either end', () => {
    expect(rows.at(-1)).toBeUndefined();
    expect(rows.at(9)).toBeUndefined();
    expect(rows.at(0.5)).toBeUndefined();
    expect(pagedRows([[], []]).at(0)).toBeUndefined();
  });

  it('finds the first row that matches, in order', () => {
    expect(rows.find((r) => r > 4)).toBe(5);
    expect(rows.find((r) => r > 100)).toBeUndefined();
  });
});
