import { memo } from 'react';
import { Link as RouterLink } from 'react-router-dom';
import type { Theme } from '@mui/material';
import { paths } from '@/config/paths';
import { VirtualTable } from '@/components/VirtualTable';
import { statusLabel } from '@/components/StatusChip';
import { fmtInt } from '@/lib/format';
import type { BudgetRow } from '../api/status';

const ROW = 44;
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
  return (
    <VirtualTable
      label="Budget status per tenant and project"
      testId="status-table"
      count={rows.length}
      rowHeight={ROW}
      columns={columns}
      headers={headers}
      minWidth={900}
      sx={tableSx}
      renderRow={(item) => (
        <Row
          key={item.key}
          r={rows[item.index]!}
          index={item.index}
          start={item.start}
          warning={warning}
        />
      )}
    />
  );
}
