import { Suspense, useState, type ReactNode } from 'react';
import { NavLink, useLocation } from 'react-router-dom';
import {
  AppBar,
  Box,
  Button,
  Drawer,
  IconButton,
  List,
  ListItem,
  ListItemButton,
  ListItemText,
  Toolbar,
  Typography,
  useMediaQuery,
  useTheme,
} from '@mui/material';
import { ErrorBoundary } from '@/components/ErrorBoundary';
import { LiveIndicator } from '@/components/LiveIndicator';
import { PageSkeleton } from '@/components/Skeletons';
import { hasPermission, useSession } from '@/lib/session';
import { useUi, type ColourMode } from '@/lib/ui';
import { useLogout } from '@/features/auth/api/logout';
import { navItems } from './nav';
import { AutoIcon, DarkIcon, LightIcon, MenuIcon } from './icons';

const drawerWidth = 220;
const nextMode: Record<ColourMode, ColourMode> = { system: 'light', light: 'dark', dark: 'system' };
const modeIcon = { system: AutoIcon, light: LightIcon, dark: DarkIcon };

function Nav({ onNavigate }: { onNavigate?: () => void }) {
  const user = useSession((s) => s.user);
  return (
    <nav aria-label="Pages">
      <List>
        {navItems
          .filter((i) => hasPermission(user, i.permission))
          .map((i) => (
            <ListItem key={i.path} disablePadding>
              <ListItemButton
                component={NavLink}
                to={i.path}
                end={i.path === '/'}
                onClick={onNavigate}
                sx={{ '&.active': { bgcolor: 'action.selected', fontWeight: 600 } }}
              >
                <ListItemText
                  primary={i.label}
                  secondary={i.later ? 'part 2' : undefined}
                  slotProps={{ secondary: { sx: { color: 'text.secondary' } } }}
                />
              </ListItemButton>
            </ListItem>
          ))}
      </List>
    </nav>
  );
}

export function AppShell({ children }: { children: ReactNode }) {
  const theme = useTheme();
  const wide = useMediaQuery(theme.breakpoints.up('md'));
  const [open, setOpen] = useState(false);
  const user = useSession((s) => s.user);
  const mode = useUi((s) => s.mode);
  const setMode = useUi((s) => s.setMode);
  const logout = useLogout();
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
          <LiveIndicator />
          <IconButton
            aria-label={`Colour mode: ${mode}`}
            title={`Colour mode: ${mode} (click for ${nextMode[mode]})`}
            onClick={() => setMode(nextMode[mode])}
          >
            <ModeIcon />
          </IconButton>
          {wide && user && (
            <Typography variant="body2" sx={{ color: 'text.secondary' }} noWrap>
              {user.username} · {user.role}
            </Typography>
          )}
          <Button onClick={() => logout.mutate()} disabled={logout.isPending} size="small">
            Sign out
          </Button>
        </Toolbar>
      </AppBar>
      <Drawer
        variant={wide ? 'permanent' : 'temporary'}
        open={wide || open}
        onClose={() => setOpen(false)}
        sx={{
          width: wide ? drawerWidth : undefined,
          flexShrink: 0,
          '& .MuiDrawer-paper': { width: drawerWidth },
        }}
      >
        <Toolbar />
        {!wide && user && (
          <Typography variant="body2" sx={{ px: 2, pt: 1, color: 'text.secondary' }}>
            {user.username} · {user.role}
          </Typography>
        )}
        <Nav onNavigate={() => setOpen(false)} />
      </Drawer>
      <Box
        component="main"
        id="main"
        tabIndex={-1}
        sx={{ flexGrow: 1, minWidth: 0, p: { xs: 1.5, sm: 3 } }}
      >
        <Toolbar />
        <ErrorBoundary resetKey={location.pathname}>
          <Suspense fallback={<PageSkeleton />}>{children}</Suspense>
        </ErrorBoundary>
      </Box>
    </Box>
  );
}
