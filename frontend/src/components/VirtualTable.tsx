import { memo, useEffect, useLayoutEffect, useState, type ReactNode } from 'react';
import { Box, type SxProps, type Theme } from '@mui/material';
import { rowWindow, type RowWindow } from './rowWindow';

/**
 * The shell of a long list shown as a table: only the rows in view are in the DOM (10,000
 * rows stay smooth). Rows are plain elements the caller renders with `className="r b"` and no
 * `style`, styled once here (no MUI component per cell): scrolling mounts a few rows a frame
 * and each costs little. They follow each other in the flow of a group that one transform
 * moves to the first row's place: a transform per row made every row's style unique, which
 * Chromium cannot reuse from a row styled before (its matched-properties cache): styling six
 * new rows took ten times as long. `contain: strict` keeps their layout and paint inside the
 * table. Rows are flex rows, each cell `k<column index>` sized by its column's `flex`: a grid
 * row took twice as long to lay out, and a scroll step lays out every row in view. Only the
 * rows re-render while scrolling: the shell and its styles (MUI's `sx`, resolved on every
 * render) render when the props change.
 *
 * Rows have one fixed height, so the rows in view follow from the scroll offset alone
 * (`rowWindow`): no per-row measurement. A measuring virtualizer (TanStack Virtual, used
 * before) rebuilt its offsets for every row each time the count changed: on the Audit log,
 * 100,000 events read 500 at a time, that was 200 new arrays of up to 100,000 entries, which
 * kept the garbage collector's full collections (pauses of 20-40 ms) coming while scrolling.
 */
export function VirtualTable({
  label,
  testId,
  count,
  ariaRowCount,
  rowHeight,
  columns,
  headers,
  minWidth,
  renderRow,
  sx,
  onNearEnd,
  onRange,
  follow = false,
}: {
  label: string;
  testId: string;
  count: number;
  /** Rows in all, when more exist than are loaded. */
  ariaRowCount?: number;
  rowHeight: number;
  /**
   * The `flex` of each column (e.g. `0 0 90px`, or `2 1 180px` to take a share of the room
   * left): the cells of column i carry the class `k<i>`, as the header's do.
   */
  columns: readonly string[];
  headers: string[];
  minWidth: number;
  /** The row at `index` (keyed by it), in the flow (no position of its own). */
  renderRow: (index: number) => ReactNode;
  /** Styles of the caller's cells (`& .class`). */
  sx?: SxProps<Theme>;
  /** Called when the rows in view come within 50 of the last loaded: load the next page. */
  onNearEnd?: () => void;
  /** Called with the first and last row index rendered (in view and overscan), as they change. */
  onRange?: (first: number, last: number) => void;
  /** Keep the last row in view as rows arrive (a live tail). */
  follow?: boolean;
}) {
  // State, not a ref: the rows (a child) listen to the element's scroll, and a child's effects
  // run before its parent's ref is set.
  const [scroller, setScroller] = useState<HTMLDivElement | null>(null);
  const header = rowHeight + 2;
  return (
    <Box
      ref={setScroller}
      role="table"
      aria-label={label}
      aria-rowcount={(ariaRowCount ?? count) + 1}
      tabIndex={0}
      data-testid={testId}
      // As tall as its rows, up to most of the screen. Inline: in `sx` each new page of rows
      // (a new height) made emotion serialise the table's styles again and insert a new rule.
      style={{ height: count * rowHeight + header }}
      sx={[
        (t: Theme) => ({
          maxHeight: { xs: '60vh', md: '65vh' },
          overflow: 'auto',
          contain: 'strict',
          // Scrolled by the compositor: a scroll step moves the painted rows instead of
          // painting the table again (Paint was a fifth of a scroll frame's CPU).
          willChange: 'scroll-position',
          border: 1,
          borderColor: 'divider',
          borderRadius: 1,
          '& .r': {
            display: 'flex',
            alignItems: 'center',
            borderBottom: `1px solid ${t.palette.divider}`,
          },
          ...Object.fromEntries(columns.map((flex, i) => [`& .k${i}`, { flex }])),
          '& .r > *': { px: 1, fontVariantNumeric: 'tabular-nums', fontSize: 14, minWidth: 0 },
          '& .h': {
            position: 'sticky',
            top: 0,
            zIndex: 1,
            bgcolor: 'background.paper',
            fontWeight: 600,
            py: 1.25,
          },
          '& .b': { height: rowHeight, contain: 'strict' },
          // One line per cell, cut with an ellipsis. `clip`, not `hidden`: a cell that hides its
          // overflow is a scroll container, with a paint layer and scroll state of its own to
          // make, lay out and paint for every cell a scroll step brings.
          '& .c > *': { overflow: 'clip', textOverflow: 'ellipsis', whiteSpace: 'nowrap' },
          // A button that looks like a link (opens a row's detail).
          '& button.link': {
            all: 'unset',
            cursor: 'pointer',
            color: t.palette.primary.main,
            maxWidth: '100%',
            overflow: 'hidden',
            textOverflow: 'ellipsis',
          },
          '& button.link:hover, & button.link:focus-visible': {
            textDecoration: 'underline',
            outline: 'revert',
          },
        }),
        ...(Array.isArray(sx) ? sx : sx ? [sx] : []),
      ]}
    >
      <div style={{ minWidth }}>
        <div role="row" aria-rowindex={1} className="r h">
          {headers.map((h, i) => (
            <div key={h} role="columnheader" className={`k${i}`}>
              {h}
            </div>
          ))}
        </div>
        <Rows
          scroller={scroller}
          count={count}
          rowHeight={rowHeight}
          renderRow={renderRow}
          onNearEnd={onNearEnd}
          onRange={onRange}
          follow={follow}
        />
      </div>
    </Box>
  );
}

/** The rows in view: the only part that re-renders as the table scrolls. */
const Rows = memo(function Rows({
  scroller,
  count,
  rowHeight,
  renderRow,
  onNearEnd,
  onRange,
  follow,
}: {
  scroller: HTMLDivElement | null;
  count: number;
  rowHeight: number;
  renderRow: (index: number) => ReactNode;
  onNearEnd?: () => void;
  onRange?: (first: number, last: number) => void;
  follow: boolean;
}) {
  const [view, setView] = useState<RowWindow>(() => rowWindow(0, 0, rowHeight, count));
  useLayoutEffect(() => {
    if (!scroller) return;
    const update = () =>
      setView((prev) => {
        const next = rowWindow(scroller.scrollTop, scroller.clientHeight, rowHeight, count);
        return next.first === prev.first && next.last === prev.last ? prev : next;
      });
    update();
    // A scroll event's update renders in a task of its own, after the frame that scrolled (React
    // gives scroll events a continuous, not a synchronous, priority): the overscan shows
    // meanwhile, and a frame does not carry React's render and commit on top of its own style,
    // layout and paint.
    scroller.addEventListener('scroll', update, { passive: true });
    const resized = new ResizeObserver(update);
    resized.observe(scroller);
    return () => {
      scroller.removeEventListener('scroll', update);
      resized.disconnect();
    };
  }, [scroller, rowHeight, count]);
  const { first, last } = view;
  useEffect(() => {
    if (onNearEnd && last >= count - 50) onNearEnd();
  }, [onNearEnd, last, count]);
  useEffect(() => {
    if (last >= first) onRange?.(first, last);
  }, [onRange, first, last]);
  useEffect(() => {
    // Past the end is the end: the browser stops at the last row.
    if (follow && count && scroller) scroller.scrollTop = scroller.scrollHeight;
  }, [follow, count, scroller]);
  const rows: ReactNode[] = [];
  for (let i = first; i <= last; i++) rows.push(renderRow(i));
  return (
    <div style={{ height: count * rowHeight }}>
      <div role="rowgroup" style={{ transform: `translateY(${first * rowHeight}px)` }}>
        {rows}
      </div>
    </div>
  );
});
