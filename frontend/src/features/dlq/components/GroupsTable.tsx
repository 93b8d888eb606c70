import { Box, Button, Stack, Typography } from '@mui/material';
import { PermissionButton } from '@/components/PermissionButton';
import { fmtInt, fmtTime } from '@/lib/format';
import { perm } from '@/lib/permissions';
import type { DlqGroup } from '../api/groups';

/**
 * Read by screen readers, not shown. The sizes are strings: in `sx` a number from 0 to 1 is
 * a fraction, so `width: 1` was `width: 100%` of the page's positioned box, and this span,
 * placed after the count, made the page ~290 px wider than the window.
 */
const visuallyHidden = {
  position: 'absolute',
  width: '1px',
  height: '1px',
  margin: '-1px',
  padding: 0,
  border: 0,
  overflow: 'hidden',
  clip: 'rect(0 0 0 0)',
  whiteSpace: 'nowrap',
} as const;

/**
 * Open entries grouped by subject and error, largest group first: one cause to fix instead
 * of a thousand rows to read. At most 500 groups (the server's page), so no virtualisation.
 */
export function GroupsTable({
  groups,
  total,
  onShow,
  onRedrive,
}: {
  groups: DlqGroup[];
  total: number;
  onShow: (g: DlqGroup) => void;
  onRedrive: (g: DlqGroup) => void;
}) {
  return (
    <Stack spacing={1}>
      <Typography variant="body2" color="text.secondary" role="status">
        {fmtInt(total)} {total === 1 ? 'group' : 'groups'} of open entries
        {total > groups.length ? ` (the ${fmtInt(groups.length)} largest shown)` : ''}
      </Typography>
      <Box
        component="ul"
        aria-label="Open entries grouped by failure"
        sx={{ listStyle: 'none', m: 0, p: 0, display: 'grid', gap: 1 }}
      >
        {groups.map((g) => (
          <Box
            component="li"
            key={`${g.original_subject}\u0000${g.error}`}
            data-group={g.original_subject}
            data-count={g.count}
            sx={{
              border: 1,
              borderColor: 'divider',
              borderRadius: 1,
              p: 1.5,
              display: 'grid',
              gap: 1,
              gridTemplateColumns: { xs: '1fr', md: '90px 1fr auto' },
              alignItems: 'center',
            }}
          >
            <Typography component="p" variant="h6" sx={{ fontVariantNumeric: 'tabular-nums' }}>
              {fmtInt(g.count)}
              <Box component="span" sx={visuallyHidden}>
                {g.count === 1 ? ' entry' : ' entries'}
              </Box>
            </Typography>
            <Box sx={{ minWidth: 0 }}>
              <Typography sx={{ fontWeight: 600, overflowWrap: 'anywhere' }}>
                {g.original_subject}
              </Typography>
              <Typography variant="body2" sx={{ overflowWrap: 'anywhere' }}>
                {g.error}
              </Typography>
              <Typography variant="caption" color="text.secondary">
                first {fmtTime(g.first_seen)} · last {fmtTime(g.last_seen)}
              </Typography>
            </Box>
            <Stack direction="row" spacing={1}>
              <Button size="small" variant="outlined" onClick={() => onShow(g)}>
                Show entries
              </Button>
              <PermissionButton
                permission={perm.writeDlq}
                size="small"
                variant="contained"
                onClick={() => onRedrive(g)}
                aria-label={`Redrive ${g.original_subject}`}
              >
                Redrive
              </PermissionButton>
            </Stack>
          </Box>
        ))}
      </Box>
    </Stack>
  );
}
