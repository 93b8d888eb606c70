import { useState, type FormEvent } from 'react';
import { Navigate, useLocation, useNavigate, useSearchParams } from 'react-router-dom';
import { Alert, Box, Button, Paper, Stack, TextField, Typography } from '@mui/material';
import { paths } from '@/config/paths';
import { ApiError } from '@/lib/http';
import { useSession } from '@/lib/session';
import { loginSchema, useLogin, type LoginInput } from '../api/login';

/** Where to go after signing in: the page the person was on, if it is one of ours. */
export function safeNext(next: string | null): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith(paths.login)) {
    return paths.dashboard;
  }
  return next;
}

export function LoginPage() {
  const [params] = useSearchParams();
  const location = useLocation();
  const navigate = useNavigate();
  const status = useSession((s) => s.status);
  const expired = useSession((s) => s.expired) || params.get('expired') === '1';
  const next = safeNext(params.get('next'));
  const [values, setValues] = useState<LoginInput>({ username: '', password: '' });
  const [errors, setErrors] = useState<Partial<Record<keyof LoginInput, string>>>({});
  const login = useLogin();

  if (status === 'authenticated' && !login.isPending) return <Navigate to={next} replace />;

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    const parsed = loginSchema.safeParse(values);
    if (!parsed.success) {
      const fe: Partial<Record<keyof LoginInput, string>> = {};
      for (const issue of parsed.error.issues)
        fe[issue.path[0] as keyof LoginInput] ??= issue.message;
      setErrors(fe);
      return;
    }
    setErrors({});
    login.mutate(parsed.data, {
      onSuccess: () => navigate(next, { replace: true, state: location.state }),
    });
  };

  const failure =
    login.error instanceof ApiError && login.error.status === 401
      ? 'Wrong username or password.'
      : login.error
        ? `Could not sign in: ${login.error.message}`
        : null;

  return (
    <Box component="main" sx={{ minHeight: '100vh', display: 'grid', placeItems: 'center', p: 2 }}>
      <Paper sx={{ p: { xs: 3, sm: 4 }, width: '100%', maxWidth: 400 }} elevation={2}>
        <Typography variant="h5" component="h1" gutterBottom>
          Golden Arch control plane
        </Typography>
        <Typography variant="body2" color="text.secondary" sx={{ mb: 2 }}>
          Sign in to the operator dashboard.
        </Typography>
        <Stack component="form" spacing={2} onSubmit={onSubmit} noValidate>
          {expired && !failure && (
            <Alert severity="info">
              Your session has expired. Sign in again to go back to where you were.
            </Alert>
          )}
          {failure && <Alert severity="error">{failure}</Alert>}
          <TextField
            label="Username"
            name="username"
            autoComplete="username"
            autoFocus
            value={values.username}
            onChange={(e) => setValues((v) => ({ ...v, username: e.target.value }))}
            error={!!errors.username}
            helperText={errors.username}
          />
          <TextField
            label="Password"
            name="password"
            type="password"
            autoComplete="current-password"
            value={values.password}
            onChange={(e) => setValues((v) => ({ ...v, password: e.target.value }))}
            error={!!errors.password}
            helperText={errors.password}
          />
          <Button type="submit" variant="contained" disabled={login.isPending}>
            {login.isPending ? 'Signing in…' : 'Sign in'}
          </Button>
        </Stack>
      </Paper>
    </Box>
  );
}
