/**
 * The rows of a list read a page at a time, as one list, without copying them into one array:
 * a list of 100,000 rows read 500 at a time copied every row loaded so far for each new page
 * (200 arrays of up to 100,000 entries, garbage the collector then has to clear while the list
 * scrolls). Finding row `i` is a binary search over the pages' first indexes.
 */
export interface PagedRows<T> {
  readonly length: number;
  /** The row at `index`, or `undefined` past the end. */
  at(index: number): T | undefined;
  /** The first row that matches. */
  find(match: (row: T) => boolean): T | undefined;
}

export function pagedRows<T>(pages: readonly (readonly T[])[]): PagedRows<T> {
  const full = pages.filter((p) => p.length > 0);
  // starts[k]: the index of page k's first row.
  const starts: number[] = [];
  let length = 0;
  for (const p of full) {
    starts.push(length);
    length += p.length;
  }
  return {
    length,
    at(index) {
      if (!(index >= 0 && index < length)) return undefined;
      let lo = 0;
      let hi = starts.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (starts[mid]! <= index) lo = mid;
        else hi = mid - 1;
      }
      return full[lo]![index - starts[lo]!];
    },
    find(match) {
      for (const p of full) {
        const hit = p.find(match);
        if (hit !== undefined) return hit;
      }
      return undefined;
    },
  };
}
