import { Suspense, useEffect, useState, type ReactNode } from 'react';
import { useLocation } from 'react-router-dom';
import useMediaQuery from '@mui/material/useMediaQuery';
import { ErrorBoundary } from '@/components/ErrorBoundary';
import { LiveIndicator } from '@/components/LiveIndicator';
import { PageSkeleton } from '@/components/Skeletons';
import { useUi, type ColourMode } from '@/lib/ui';
import { useLogout } from '@/features/auth/api/logout';
import { useSessionTransition } from './guards';
import { MobileNav } from './MobileNav';
import { pageTitle } from './nav';
import { PageNav } from './PageNav';
import { AutoIcon, DarkIcon, LightIcon, MenuIcon } from './icons';

const nextMode: Record<ColourMode, ColourMode> = { system: 'light', light: 'dark', dark: 'system' };
const modeIcon = { system: AutoIcon, light: LightIcon, dark: DarkIcon };

// The shell is drawn before the session is known and does not render again when it arrives:
// only these two parts show the user (each takes the session in as a transition, guards.tsx).
function UserName() {
  const { user } = useSessionTransition();
  return user ? (
    <p className="who">
      {user.username} · {user.role}
    </p>
  ) : null;
}

function SignOut() {
  const { user } = useSessionTransition();
  const logout = useLogout();
  return (
    <button
      type="button"
      className="text-btn"
      onClick={() => logout.mutate()}
      disabled={logout.isPending || !user}
    >
      Sign out
    </button>
  );
}

/**
 * The frame of every signed-in page: plain elements styled by index.html's CSS (no MUI
 * component, no emotion style to serialise and insert on the first render: the shell's first
 * paint, with the page's heading, is the page's first and largest paint).
 */
export function AppShell({ children }: { children: ReactNode }) {
  // md and up (index.html's media queries show one of the two navigations the same way).
  const wide = useMediaQuery('(min-width:900px)');
  // The narrow screen's navigation; a screen that turns wide shows it in its column instead.
  const [open, setOpen] = useState(false);
  useEffect(() => {
    if (wide) setOpen(false);
  }, [wide]);
  const mode = useUi((s) => s.mode);
  const setMode = useUi((s) => s.setMode);
  const location = useLocation();
  const ModeIcon = modeIcon[mode];

  return (
    <div className="shell">
      <a href="#main" className="skip-link">
        Skip to content
      </a>
      <header className="appbar">
        <div className="toolbar">
          {!wide && (
            <button
              type="button"
              className="icon-btn edge-start"
              aria-label="Open navigation"
              onClick={() => setOpen(true)}
            >
              <MenuIcon />
            </button>
          )}
          <p className="brand">Golden Arch</p>
          {/* Before the chip and the buttons: the name arrives with the session, after the
              bar is drawn, and takes its room from the title's, moving nothing else. */}
          {wide && <UserName />}
          <LiveIndicator />
          <button
            type="button"
            className="icon-btn"
            aria-label={`Colour mode: ${mode}`}
            title={`Colour mode: ${mode} (click for ${nextMode[mode]})`}
            onClick={() => setMode(nextMode[mode])}
          >
            <ModeIcon />
          </button>
          <SignOut />
        </div>
      </header>
      {wide ? (
        <aside className="nav-col">
          <div>
            <div className="bar-space" />
            <PageNav />
          </div>
        </aside>
      ) : (
        <MobileNav open={open} onClose={() => setOpen(false)} />
      )}
      <main className="main" id="main" tabIndex={-1}>
        <div className="bar-space" />
        <ErrorBoundary resetKey={location.pathname}>
          <Suspense fallback={<PageSkeleton title={pageTitle(location.pathname)} />}>
            {children}
          </Suspense>
        </ErrorBoundary>
      </main>
    </div>
  );
}
