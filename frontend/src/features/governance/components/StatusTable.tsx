import { memo, useRef } from 'react';
import { Link as RouterLink } from 'react-router-dom';
import { Box, type Theme } from '@mui/material';
import { useVirtualizer } from '@tanstack/react-virtual';
import { paths } from '@/config/paths';
import { statusLabel } from '@/components/StatusChip';
import { fmtInt } from '@/lib/format';
import type { BudgetRow } from '../api/status';

const ROW = 44;
const HEADER = 46;
const columns = 'minmax(180px, 2fr) 110px 110px 110px 110px minmax(160px, 1.5fr) 120px';
const headers = [
  'Tenant / project',
  'Limit',
  'Used',
  'Reserved',
  'Available',
  'Utilisation',
  'Status',
];

// Rows are plain elements styled once here (not MUI components per cell): scrolling 10,000
// rows re-renders ~30 rows a frame, and per-component styling cost a long task each time.
const tableSx = (t: Theme) => {
  const chip = (bg: string, fg: string, border = bg) => ({
    background: bg,
    color: fg,
    borderColor: border,
  });
  const p = t.palette;
  return {
    '& .r': {
      display: 'grid',
      gridTemplateColumns: columns,
      alignItems: 'center',
      borderBottom: `1px solid ${p.divider}`,
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
    '& .b': { position: 'absolute', top: 0, left: 0, right: 0, height: ROW, contain: 'strict' },
    '& .n': { overflow: 'hidden', textOverflow: 'ellipsis', whiteSpace: 'nowrap' },
    '& .n a': { color: p.primary.main, textDecoration: 'none' },
    '& .n a:hover, & .n a:focus-visible': { textDecoration: 'underline' },
    '& .u': { display: 'flex', alignItems: 'center', gap: 1 },
    '& .track': {
      flexGrow: 1,
      height: 8,
      borderRadius: 4,
      background: p.action.selected,
      overflow: 'hidden',
    },
    '& .fill': { height: '100%', borderRadius: 4, background: p.primary.main },
    '& .fill.warning': { background: p.warning.main },
    '& .fill.exhausted': { background: p.error.main },
    '& .pct': { width: 52, textAlign: 'right' },
    '& .chip': {
      display: 'inline-block',
      px: 1,
      py: 0.25,
      borderRadius: 4,
      fontSize: 13,
      border: '1px solid',
      lineHeight: 1.4,
    },
    '& .chip.ok': chip(p.success.main, p.success.contrastText),
    '& .chip.warning': chip(p.warning.main, p.warning.contrastText),
    '& .chip.exhausted': chip(p.error.main, p.error.contrastText),
    '& .chip.no_budget': chip('transparent', p.text.primary, p.divider),
  };
};

const Row = memo(function Row({
  r,
  index,
  start,
  warning,
}: {
  r: BudgetRow;
  index: number;
  start: number;
  warning: number;
}) {
  const pct = r.utilisation_percent;
  const level =
    pct === undefined || pct === null
      ? ''
      : pct >= 100
        ? 'exhausted'
        : pct >= warning
          ? 'warning'
          : '';
  const id = `${r.tenant_id}/${r.project_id}`;
  return (
    <div
      role="row"
      aria-rowindex={index + 2}
      data-budget={id}
      className="r b"
      style={{ transform: `translateY(${start}px)` }}
    >
      <div role="cell" className="n">
        <RouterLink
          to={`${paths.budget}?tenant=${encodeURIComponent(r.tenant_id)}&project=${encodeURIComponent(r.project_id)}`}
        >
          {r.tenant_id} / {r.project_id}
        </RouterLink>
      </div>
      <div role="cell">{fmtInt(r.limit)}</div>
      <div role="cell">{fmtInt(r.used)}</div>
      <div role="cell">{fmtInt(r.reserved)}</div>
      <div role="cell">{fmtInt(r.available)}</div>
      <div role="cell">
        {pct === undefined || pct === null ? (
          '–'
        ) : (
          <div className="u">
            <div
              className="track"
              role="progressbar"
              aria-label={`Utilisation of ${id}`}
              aria-valuenow={Math.round(pct)}
              aria-valuemin={0}
              aria-valuemax={100}
            >
              <div className={`fill ${level}`} style={{ width: `${Math.min(100, pct)}%` }} />
            </div>
            <span className="pct">{pct.toFixed(1)}%</span>
          </div>
        )}
      </div>
      <div role="cell">
        <span className={`chip ${r.status}`}>{statusLabel(r.status)}</span>
      </div>
    </div>
  );
});

/** The status table: only the rows in view are in the DOM (10,000 rows stay smooth). */
export function StatusTable({ rows, warning }: { rows: BudgetRow[]; warning: number }) {
  const scrollRef = useRef<HTMLDivElement>(null);
  const v = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => ROW,
    overscan: 8,
  });
  return (
    <Box
      ref={scrollRef}
      role="table"
      aria-label="Budget status per tenant and project"
      aria-rowcount={rows.length + 1}
      tabIndex={0}
      data-testid="status-table"
      sx={[
        {
          // As tall as its rows, up to most of the screen.
          height: rows.length * ROW + HEADER,
          maxHeight: { xs: '60vh', md: '65vh' },
          overflow: 'auto',
          // Rows mounted while scrolling lay out and paint inside the table only.
          contain: 'strict',
          border: 1,
          borderColor: 'divider',
          borderRadius: 1,
        },
        tableSx,
      ]}
    >
      <div style={{ minWidth: 900 }}>
        <div role="row" aria-rowindex={1} className="r h">
          {headers.map((h) => (
            <div key={h} role="columnheader">
              {h}
            </div>
          ))}
        </div>
        <div role="rowgroup" style={{ position: 'relative', height: v.getTotalSize() }}>
          {v.getVirtualItems().map((item) => (
            <Row
              key={item.key}
              r={rows[item.index]!}
              index={item.index}
              start={item.start}
              warning={warning}
            />
          ))}
        </div>
      </div>
    </Box>
  );
}
