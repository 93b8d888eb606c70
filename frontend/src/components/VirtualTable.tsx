import { useEffect, useRef, type ReactNode } from 'react';
import { Box, type SxProps, type Theme } from '@mui/material';
import { useVirtualizer, type VirtualItem } from '@tanstack/react-virtual';

/**
 * The shell of a long list shown as a table: only the rows in view are in the DOM (10,000
 * rows stay smooth). Rows are plain elements the caller renders with `className="r b"` and
 * `style={{ transform: translateY(start) }}`, styled once here (no MUI component per cell):
 * scrolling mounts a few rows a frame and each costs little. `contain: strict` keeps their
 * layout and paint inside the table.
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
  follow = false,
}: {
  label: string;
  testId: string;
  count: number;
  /** Rows in all, when more exist than are loaded. */
  ariaRowCount?: number;
  rowHeight: number;
  /** `grid-template-columns` of every row. */
  columns: string;
  headers: string[];
  minWidth: number;
  renderRow: (item: VirtualItem) => ReactNode;
  /** Styles of the caller's cells (`& .class`). */
  sx?: SxProps<Theme>;
  /** Called when the rows in view come within 50 of the last loaded: load the next page. */
  onNearEnd?: () => void;
  /** Keep the last row in view as rows arrive (a live tail). */
  follow?: boolean;
}) {
  const scrollRef = useRef<HTMLDivElement>(null);
  const v = useVirtualizer({
    count,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => rowHeight,
    overscan: 8,
  });
  const items = v.getVirtualItems();
  const lastIndex = items.length ? items[items.length - 1]!.index : 0;
  useEffect(() => {
    if (onNearEnd && lastIndex >= count - 50) onNearEnd();
  }, [onNearEnd, lastIndex, count]);
  useEffect(() => {
    if (follow && count) v.scrollToIndex(count - 1, { align: 'end' });
  }, [follow, count, v]);
  const header = rowHeight + 2;
  return (
    <Box
      ref={scrollRef}
      role="table"
      aria-label={label}
      aria-rowcount={(ariaRowCount ?? count) + 1}
      tabIndex={0}
      data-testid={testId}
      sx={[
        (t: Theme) => ({
          // As tall as its rows, up to most of the screen.
          height: count * rowHeight + header,
          maxHeight: { xs: '60vh', md: '65vh' },
          overflow: 'auto',
          contain: 'strict',
          border: 1,
          borderColor: 'divider',
          borderRadius: 1,
          '& .r': {
            display: 'grid',
            gridTemplateColumns: columns,
            alignItems: 'center',
            borderBottom: `1px solid ${t.palette.divider}`,
          },
          '& .r > *': { px: 1, fontVariantNumeric: 'tabular-nums', fontSize: 14, minWidth: 0 },
          '& .h': {
            position: 'sticky',
            top: 0,
            zIndex: 1,
            bgcolor: 'background.paper',
            fontWeight: 600,
            py: 1.25,
          },
          '& .b': {
            position: 'absolute',
            top: 0,
            left: 0,
            right: 0,
            height: rowHeight,
            contain: 'strict',
          },
          // One line per cell, cut with an ellipsis.
          '& .c > *': { overflow: 'hidden', textOverflow: 'ellipsis', whiteSpace: 'nowrap' },
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
          {headers.map((h) => (
            <div key={h} role="columnheader">
              {h}
            </div>
          ))}
        </div>
        <div role="rowgroup" style={{ position: 'relative', height: v.getTotalSize() }}>
          {items.map(renderRow)}
        </div>
      </div>
    </Box>
  );
}
