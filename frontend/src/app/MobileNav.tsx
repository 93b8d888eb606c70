import { useEffect, useRef } from 'react';
import { Box, IconButton, Typography } from '@mui/material';
import { styled } from '@mui/material/styles';
import { useSession } from '@/lib/session';
import { CloseIcon } from './icons';
import { PageNav } from './PageNav';

// A native modal <dialog>, not MUI's Drawer: the browser makes the rest of the page inert,
// keeps the focus inside, closes it on Escape and gives the focus back to the menu button,
// with no transition state machine (a Drawer closed by a link to a lazily loaded page could
// stay "closing", leaving the page aria-hidden: mui/material-ui#36934) and no modal code in
// the entry script.
const Dialog = styled('dialog')(({ theme }) => ({
  position: 'fixed',
  inset: '0 auto 0 0',
  width: 220,
  maxWidth: '85vw',
  height: '100%',
  maxHeight: 'none',
  margin: 0,
  padding: 0,
  border: 'none',
  overflowY: 'auto',
  color: theme.palette.text.primary,
  backgroundColor: theme.palette.background.paper,
  boxShadow: theme.shadows[16],
  '&::backdrop': { backgroundColor: 'rgba(0, 0, 0, 0.5)' },
  '&[open]': { animation: 'mobile-nav-in 225ms cubic-bezier(0, 0, 0.2, 1)' },
  '@keyframes mobile-nav-in': { from: { transform: 'translateX(-100%)' } },
  '@media (prefers-reduced-motion: reduce)': { '&[open]': { animation: 'none' } },
}));

/** The navigation of a narrow screen: a modal dialog the shell's menu button opens. */
export function MobileNav({ open, onClose }: { open: boolean; onClose: () => void }) {
  const user = useSession((s) => s.user);
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) dialog.showModal();
    if (!open && dialog.open) dialog.close();
  }, [open]);
  return (
    <Dialog
      ref={ref}
      aria-label="Navigation"
      // Escape (the browser closes it) and close() both end here.
      onClose={onClose}
      // A click on the backdrop lands on the dialog itself.
      onClick={(e) => e.target === e.currentTarget && onClose()}
    >
      {/* Fills the panel, so that a click anywhere on it is not a click on the backdrop. */}
      <Box sx={{ minHeight: '100%' }}>
        <Box sx={{ display: 'flex', alignItems: 'center', gap: 1, pl: 2, pr: 1, minHeight: 56 }}>
          <Typography variant="body2" noWrap sx={{ flexGrow: 1, color: 'text.secondary' }}>
            {user ? `${user.username} · ${user.role}` : ''}
          </Typography>
          <IconButton aria-label="Close navigation" onClick={onClose}>
            <CloseIcon />
          </IconButton>
        </Box>
        <PageNav onNavigate={onClose} />
      </Box>
    </Dialog>
  );
}
