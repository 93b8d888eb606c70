import { Suspense, useLayoutEffect, useMemo, type ReactNode } from 'react';
import { BrowserRouter, Navigate, Route, Routes } from 'react-router-dom';
import { ThemeProvider } from '@mui/material/styles';
import useMediaQuery from '@mui/material/useMediaQuery';
import { QueryClientProvider } from '@tanstack/react-query';
import { paths } from '@/config/paths';
import { Toasts } from '@/components/Toasts';
import { LiveProvider } from '@/lib/live/LiveProvider';
import { useSession } from '@/lib/session';
import { resolvedMode, useUi } from '@/lib/ui';
import { AppShell } from './AppShell';
import { ForbiddenPage } from './ForbiddenPage';
import { RequireAuth, RequirePermission } from './guards';
import { navItems } from './nav';
import { pages } from './pages';
import { queryClient } from './queryClient';
import { useSessionBootstrap, useSessionExpiry } from './session';
import { makeTheme } from './theme';

export { makeTheme };

const LoginPage = pages[paths.login]!;

function page(path: string): ReactNode {
  const Page = pages[path];
  return Page ? <Page /> : null;
}

// The shell is drawn at once, with the page's heading, while `/auth/me` and the page's chunk
// are on their way (RequireAuth's placeholder); a signed-out visitor then goes to the login page.
function Signed({ children }: { children: ReactNode }) {
  return (
    <AppShell>
      <SessionExpiry />
      <RequireAuth>{children}</RequireAuth>
    </AppShell>
  );
}

/** Apart, so that the session's arrival does not render the shell again. */
function SessionExpiry() {
  useSessionExpiry();
  return null;
}

export function AppRoutes() {
  return (
    <Routes>
      <Route
        path={paths.login}
        element={
          <Suspense fallback={null}>
            <LoginPage />
          </Suspense>
        }
      />
      <Route
        path={paths.forbidden}
        element={
          <Signed>
            <ForbiddenPage />
          </Signed>
        }
      />
      {navItems.map((item) => (
        <Route
          key={item.path}
          path={item.path === '/' ? '/' : `${item.path}/*`}
          element={
            <Signed>
              <RequirePermission permission={item.permission}>{page(item.path)}</RequirePermission>
            </Signed>
          }
        />
      ))}
      <Route path="*" element={<Navigate to={paths.dashboard} replace />} />
    </Routes>
  );
}

/**
 * MUI's theme for the pages' components, and the colour mode of index.html's CSS (the base
 * styles that were MUI's CssBaseline, and the shell's): `data-mode` on <html>, set before the
 * browser paints.
 */
function Themed({ children }: { children: ReactNode }) {
  const mode = useUi((s) => s.mode);
  const prefersDark = useMediaQuery('(prefers-color-scheme: dark)');
  const resolved = resolvedMode(mode, prefersDark);
  const theme = useMemo(() => makeTheme(resolved), [resolved]);
  useLayoutEffect(() => {
    document.documentElement.dataset.mode = resolved;
  }, [resolved]);
  return <ThemeProvider theme={theme}>{children}</ThemeProvider>;
}

function Session({ children }: { children: ReactNode }) {
  useSessionBootstrap();
  const signedIn = useSession((s) => s.status === 'authenticated');
  return <LiveProvider enabled={signedIn}>{children}</LiveProvider>;
}

export function App() {
  return (
    <QueryClientProvider client={queryClient}>
      <Themed>
        <BrowserRouter>
          <Session>
            <AppRoutes />
            <Toasts />
          </Session>
        </BrowserRouter>
      </Themed>
    </QueryClientProvider>
  );
}
