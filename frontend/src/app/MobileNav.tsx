import { useEffect, useRef } from 'react';
import { useSession } from '@/lib/session';
import { CloseIcon } from './icons';
import { PageNav } from './PageNav';

// A native modal <dialog>, not MUI's Drawer: the browser makes the rest of the page inert,
// keeps the focus inside, closes it on Escape and gives the focus back to the menu button,
// with no transition state machine (a Drawer closed by a link to a lazily loaded page could
// stay "closing", leaving the page aria-hidden: mui/material-ui#36934) and no modal code in
// the entry script. Styled by index.html's CSS (`.mobile-nav`), like the rest of the shell.

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
    <dialog
      ref={ref}
      className="mobile-nav"
      aria-label="Navigation"
      // Escape (the browser closes it) and close() both end here.
      onClose={onClose}
      // A click on the backdrop lands on the dialog itself.
      onClick={(e) => e.target === e.currentTarget && onClose()}
    >
      {/* Fills the panel, so that a click anywhere on it is not a click on the backdrop. */}
      <div>
        <div className="mobile-nav-head">
          <p className="who">{user ? `${user.username} · ${user.role}` : ''}</p>
          <button
            type="button"
            className="icon-btn"
            aria-label="Close navigation"
            onClick={onClose}
          >
            <CloseIcon />
          </button>
        </div>
        <PageNav onNavigate={onClose} />
      </div>
    </dialog>
  );
}
