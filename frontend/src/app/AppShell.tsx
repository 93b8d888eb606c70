import { Suspense, useEffect, useState, type ReactNode } from 'react';
import { useLocation } from 'react-router-dom';
import {
  AppBar,
  Box,
  Button,
  IconButton,
  Toolbar,
  Typography,
  useMediaQuery,
  useTheme,
} from '@mui/material';
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

const drawerWidth = 220;
const nextMode: Record<ColourMode, ColourMode> = { system: 'light', light: 'dark', dark: 'system' };
const modeIcon = { system: AutoIcon, light: LightIcon, dark: DarkIcon };

// The shell is drawn before the session is known and does not render again when it arrives:
// only these two parts show the user (each takes the session in as a transition, guards.tsx).
function UserName() {
  const { user } = useSessionTransition();
  return user ? (
    <Typography variant="body2" sx={{ color: 'text.secondary' }} noWrap>
      {user.username} · {user.role}
    </Typography>
  ) : null;
}

function SignOut() {
  const { user } = useSessionTransition();
  const logout = useLogout();
  return (
    <Button onClick={() => logout.mutate()} disabled={logout.isPending || !user} size="small">
      Sign out
    </Button>
  );
}

export function AppShell({ children }: { children: ReactNode }) {
  const theme = useTheme();
  const wide = useMediaQuery(theme.breakpoints.up('md'));
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
    <Box sx={{ display: 'flex', minHeight: '100vh' }}>
      <a href="#main" className="skip-link">
        Skip to content
      </a>
      <AppBar
        position="fixed"
        sx={{ zIndex: (t) => t.zIndex.drawer + 1 }}
        color="default"
        elevation={1}
      >
        <Toolbar sx={{ gap: 1, px: { xs: 1, sm: 2 } }}>
          {!wide && (
            <IconButton aria-label="Open navigation" onClick={() => setOpen(true)} edge="start">
              <MenuIcon />
            </IconButton>
          )}
          <Typography
            variant="h6"
            component="p"
            noWrap
            sx={{ flexGrow: 1, minWidth: 0, fontSize: { xs: 16, sm: 20 } }}
          >
            Golden Arch
          </Typography>
          {/* Before the chip and the buttons: the name arrives with the session, after the
              bar is drawn, and takes its room from the title's, moving nothing else. */}
          {wide && <UserName />}
          <LiveIndicator />
          <IconButton
            aria-label={`Colour mode: ${mode}`}
            title={`Colour mode: ${mode} (click for ${nextMode[mode]})`}
            onClick={() => setMode(nextMode[mode])}
          >
            <ModeIcon />
          </IconButton>
          <SignOut />
        </Toolbar>
      </AppBar>
      {wide ? (
        <Box component="aside" sx={{ width: drawerWidth, flexShrink: 0 }}>
          <Box
            sx={{
              position: 'fixed',
              top: 0,
              bottom: 0,
              width: drawerWidth,
              overflowY: 'auto',
              bgcolor: 'background.paper',
              borderRight: 1,
              borderColor: 'divider',
            }}
          >
            <Toolbar />
            <PageNav />
          </Box>
        </Box>
      ) : (
        <MobileNav open={open} onClose={() => setOpen(false)} />
      )}
      <Box
        component="main"
        id="main"
        tabIndex={-1}
        sx={{ flexGrow: 1, minWidth: 0, p: { xs: 1.5, sm: 3 } }}
      >
        <Toolbar />
        <ErrorBoundary resetKey={location.pathname}>
          <Suspense fallback={<PageSkeleton title={pageTitle(location.pathname)} />}>
            {children}
          </Suspense>
        </ErrorBoundary>
      </Box>
    </Box>
  );
}
