import { memo, useCallback, useState, type CSSProperties } from 'react';
import { Link as RouterLink } from 'react-router-dom';
import type { Theme } from '@mui/material';
import { paths } from '@/config/paths';
import { VirtualTable } from '@/components/VirtualTable';
import { statusLabel } from '@/components/StatusChip';
import { fmtInt } from '@/lib/format';
import {
  pagesFor,
  useStatusRows,
  type Barrier,
  type BudgetRow,
  type StatusView,
} from '../api/status';

const ROW = 44;
const columns = [
  '2 1 180px',
  '0 0 110px',
  '0 0 110px',
  '0 0 110px',
  '0 0 110px',
  '1.5 1 160px',
  '0 0 120px',
];
const headers = [
  'Tenant / project',
  'Limit',
  'Used',
  'Reserved',
  'Available',
  'Utilisation',
  'Status',
];

// Rows are plain elements styled once here (not MUI components per cell), as few as a row
// needs (the bar's fill is its track's ::after, its figure a bare text): scrolling 10,000
// rows mounts a dozen rows a frame, and every element of them is styled and laid out in that
// frame.
const tableSx = (t: Theme) => {
  const chip = (bg: string, fg: string, border = bg) => ({
    background: bg,
    color: fg,
    borderColor: border,
  });
  const p = t.palette;
  return {
    // `clip`, not `hidden`: no scroll container per cell (see VirtualTable's `.c`).
    '& .n': { overflow: 'clip', textOverflow: 'ellipsis', whiteSpace: 'nowrap' },
    '& .n a': { color: p.primary.main, textDecoration: 'none' },
    '& .n a:hover, & .n a:focus-visible': { textDecoration: 'underline' },
    // The bar, then its figure (a bare text: one element less per row).
    '& .u': { display: 'flex', alignItems: 'center', gap: 1 },
    '& .track': {
      flexGrow: 1,
      height: 8,
      borderRadius: 4,
      background: p.action.selected,
      overflow: 'clip',
    },
    '& .track::after': {
      content: '""',
      display: 'block',
      height: '100%',
      width: 'var(--w)',
      borderRadius: 4,
      background: p.primary.main,
    },
    '& .track.warning::after': { background: p.warning.main },
    '& .track.exhausted::after': { background: p.error.main },
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
    // A row whose page is still on its way.
    '& .wait::after': {
      content: '""',
      flexGrow: 1,
      height: 12,
      mx: 1,
      borderRadius: 4,
      background: p.action.hover,
    },
  };
};

const Row = memo(function Row({
  r,
  index,
  warning,
}: {
  r: BudgetRow;
  index: number;
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
    <div role="row" aria-rowindex={index + 2} data-budget={id} className="r b">
      <div role="cell" className="k0 n">
        <RouterLink
          to={`${paths.budget}?tenant=${encodeURIComponent(r.tenant_id)}&project=${encodeURIComponent(r.project_id)}`}
        >
          {r.tenant_id} / {r.project_id}
        </RouterLink>
      </div>
      {[r.limit, r.used, r.reserved, r.available].map((v, k) => (
        <div key={k} role="cell" className={`k${k + 1}`}>
          {fmtInt(v)}
        </div>
      ))}
      <div role="cell" className={pct === undefined || pct === null ? 'k5' : 'k5 u'}>
        {pct === undefined || pct === null ? (
          '–'
        ) : (
          <>
            <div
              className={`track ${level}`}
              role="progressbar"
              aria-label={`Utilisation of ${id}`}
              aria-valuenow={Math.round(pct)}
              aria-valuemin={0}
              aria-valuemax={100}
              style={{ '--w': `${Math.min(100, pct)}%` } as CSSProperties}
            />
            {pct.toFixed(1)}%
          </>
        )}
      </div>
      <div role="cell" className="k6">
        <span className={`chip ${r.status}`}>{statusLabel(r.status)}</span>
      </div>
    </div>
  );
});

/**
 * The status table of a view: `count` rows (every budget that matches), of which only those in
 * view are in the DOM. It reads the pages (100 rows each) that hold the rows in view; the set
 * of pages changes every hundred rows, so scrolling re-renders the rows alone in between.
 */
export const StatusTable = memo(function StatusTable({
  view,
  count,
  warning,
  barrier,
}: {
  view: StatusView;
  count: number;
  warning: number;
  barrier: Barrier;
}) {
  const [offsets, setOffsets] = useState([0]);
  const onRange = useCallback((first: number, last: number) => {
    const next = pagesFor(first, last);
    setOffsets((prev) => (prev.join() === next.join() ? prev : next));
  }, []);
  const rowAt = useStatusRows(view, offsets, barrier);
  return (
    <VirtualTable
      label="Budget status per tenant and project"
      testId="status-table"
      count={count}
      rowHeight={ROW}
      columns={columns}
      headers={headers}
      minWidth={900}
      sx={tableSx}
      onRange={onRange}
      renderRow={(i) => {
        const r = rowAt(i);
        return r ? (
          <Row key={i} r={r} index={i} warning={warning} />
        ) : (
          <div key={i} role="row" aria-rowindex={i + 2} aria-busy="true" className="r b wait" />
        );
      }}
    />
  );
});
