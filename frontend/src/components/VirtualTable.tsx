import { memo, useEffect, useState, type ReactNode } from 'react';
import { Box, type SxProps, type Theme } from '@mui/material';
import { useVirtualizer, type VirtualItem } from '@tanstack/react-virtual';

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
  /** A row at `item.index`, keyed by `item.key`, in the flow (no position of its own). */
  renderRow: (item: VirtualItem) => ReactNode;
  /** Styles of the caller's cells (`& .class`). */
  sx?: SxProps<Theme>;
  /** Called when the rows in view come within 50 of the last loaded: load the next page. */
  onNearEnd?: () => void;
  /** Called with the first and last row index rendered (in view and overscan), as they change. */
  onRange?: (first: number, last: number) => void;
  /** Keep the last row in view as rows arrive (a live tail). */
  follow?: boolean;
}) {
  // State, not a ref: the rows' virtualizer (a child) needs the element, and a child's effects
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
  renderRow: (item: VirtualItem) => ReactNode;
  onNearEnd?: () => void;
  onRange?: (first: number, last: number) => void;
  follow: boolean;
}) {
  const v = useVirtualizer({
    count,
    getScrollElement: () => scroller,
    estimateSize: () => rowHeight,
    overscan: 8,
    // The rows of a new scroll position render in a task of their own, after the frame that
    // scrolled (the overscan shows meanwhile), not synchronously inside the scroll event:
    // a frame no longer carries React's render and commit on top of its own style, layout
    // and paint (together a 20-25 ms task at 1x CPU, 2-3x that on a busy machine).
    useFlushSync: false,
  });
  const items = v.getVirtualItems();
  const firstIndex = items.length ? items[0]!.index : 0;
  const lastIndex = items.length ? items[items.length - 1]!.index : 0;
  useEffect(() => {
    if (onNearEnd && lastIndex >= count - 50) onNearEnd();
  }, [onNearEnd, lastIndex, count]);
  useEffect(() => {
    onRange?.(firstIndex, lastIndex);
  }, [onRange, firstIndex, lastIndex]);
  useEffect(() => {
    if (follow && count) v.scrollToIndex(count - 1, { align: 'end' });
  }, [follow, count, v]);
  return (
    <div style={{ height: v.getTotalSize() }}>
      <div role="rowgroup" style={{ transform: `translateY(${items[0]?.start ?? 0}px)` }}>
        {items.map(renderRow)}
      </div>
    </div>
  );
});
