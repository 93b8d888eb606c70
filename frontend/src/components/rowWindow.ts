/** The rows to render, first to last (inclusive; none when `last < first`). */
export interface RowWindow {
  first: number;
  last: number;
}

/**
 * The rows of a list of `count` rows `rowHeight` high that a scroller `viewHeight` high shows at
 * `scrollTop`, and `overscan` more on each side: they show while the next rows render. Rows are
 * counted from the top of the scrolled content; a sticky header above them hides the top of
 * the view, which the overscan covers.
 */
export function rowWindow(
  scrollTop: number,
  viewHeight: number,
  rowHeight: number,
  count: number,
  overscan = 8,
): RowWindow {
  if (count <= 0 || rowHeight <= 0) return { first: 0, last: -1 };
  const top = Math.max(0, scrollTop);
  const first = Math.max(0, Math.floor(top / rowHeight) - overscan);
  const last = Math.min(count - 1, Math.ceil((top + viewHeight) / rowHeight) + overscan);
  return { first: Math.min(first, last), last };
}
