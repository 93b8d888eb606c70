import { useRef } from 'react';
import { Link as RouterLink } from 'react-router-dom';
import { Box, Link, Typography } from '@mui/material';
import { useVirtualizer } from '@tanstack/react-virtual';
import { paths } from '@/config/paths';
import { StatusChip } from '@/components/StatusChip';
import { UtilisationBar } from '@/components/UtilisationBar';
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

/** The status table: only the rows in view are in the DOM (10,000 rows stay smooth). */
export function StatusTable({ rows, warning }: { rows: BudgetRow[]; warning: number }) {
  const scrollRef = useRef<HTMLDivElement>(null);
  const v = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => ROW,
    overscan: 10,
  });
  return (
    <Box
      ref={scrollRef}
      role="table"
      aria-label="Budget status per tenant and project"
      aria-rowcount={rows.length + 1}
      tabIndex={0}
      data-testid="status-table"
      sx={{
        height: { xs: '60vh', md: '65vh' },
        overflow: 'auto',
        border: 1,
        borderColor: 'divider',
        borderRadius: 1,
      }}
    >
      <Box sx={{ minWidth: 900 }}>
        <Box
          role="row"
          aria-rowindex={1}
          sx={{
            display: 'grid',
            gridTemplateColumns: columns,
            position: 'sticky',
            top: 0,
            zIndex: 1,
            bgcolor: 'background.paper',
            borderBottom: 1,
            borderColor: 'divider',
          }}
        >
          {headers.map((h) => (
            <Typography
              key={h}
              role="columnheader"
              variant="body2"
              sx={{ px: 1, py: 1.25, fontWeight: 600 }}
            >
              {h}
            </Typography>
          ))}
        </Box>
        <Box role="rowgroup" sx={{ position: 'relative', height: v.getTotalSize() }}>
          {v.getVirtualItems().map((item) => {
            const r = rows[item.index]!;
            return (
              <Box
                key={`${r.tenant_id}/${r.project_id}`}
                role="row"
                aria-rowindex={item.index + 2}
                data-budget={`${r.tenant_id}/${r.project_id}`}
                sx={{
                  display: 'grid',
                  gridTemplateColumns: columns,
                  alignItems: 'center',
                  position: 'absolute',
                  top: 0,
                  left: 0,
                  right: 0,
                  height: ROW,
                  transform: `translateY(${item.start}px)`,
                  borderBottom: 1,
                  borderColor: 'divider',
                  '& > *': { px: 1, fontVariantNumeric: 'tabular-nums' },
                }}
              >
                <Box
                  role="cell"
                  sx={{ overflow: 'hidden', textOverflow: 'ellipsis', whiteSpace: 'nowrap' }}
                >
                  <Link
                    component={RouterLink}
                    to={`${paths.budget}?tenant=${encodeURIComponent(r.tenant_id)}&project=${encodeURIComponent(r.project_id)}`}
                  >
                    {r.tenant_id} / {r.project_id}
                  </Link>
                </Box>
                <Box role="cell">{fmtInt(r.limit)}</Box>
                <Box role="cell">{fmtInt(r.used)}</Box>
                <Box role="cell">{fmtInt(r.reserved)}</Box>
                <Box role="cell">{fmtInt(r.available)}</Box>
                <Box role="cell">
                  <UtilisationBar percent={r.utilisation_percent} warning={warning} />
                </Box>
                <Box role="cell">
                  <StatusChip status={r.status} />
                </Box>
              </Box>
            );
          })}
        </Box>
      </Box>
    </Box>
  );
}
