import { useState, type ReactElement } from 'react';
import { useSearchParams } from 'react-router-dom';
import {
  Alert,
  Box,
  Button,
  Chip,
  Dialog,
  DialogActions,
  DialogContent,
  DialogTitle,
  FormControl,
  InputLabel,
  MenuItem,
  Paper,
  Select,
  Stack,
  TextField,
  Tooltip,
  Typography,
} from '@mui/material';
import { EmptyState } from '@/components/EmptyState';
import { ErrorAlert, errorText } from '@/components/ErrorAlert';
import { TableSkeleton } from '@/components/Skeletons';
import { fmtTime } from '@/lib/format';
import { ApiError } from '@/lib/http';
import { useSession } from '@/lib/session';
import { toast } from '@/lib/ui';
import { useCreateUser } from '../api/create';
import { useResetPassword } from '../api/password';
import { useUsersLive } from '../api/live';
import { useUpdateUser } from '../api/update';
import { useUsers, type User } from '../api/users';

const roles = ['admin', 'operator', 'developer', 'auditor', 'viewer', 'service'];

function RoleSelect({
  id,
  value,
  disabled,
  onChange,
}: {
  id: string;
  value: string;
  disabled?: boolean;
  onChange: (role: string) => void;
}) {
  return (
    <FormControl size="small" fullWidth>
      <InputLabel id={id}>Role</InputLabel>
      <Select
        labelId={id}
        label="Role"
        value={value}
        disabled={disabled}
        onChange={(e) => onChange(e.target.value)}
      >
        {roles.map((r) => (
          <MenuItem key={r} value={r}>
            {r}
          </MenuItem>
        ))}
      </Select>
    </FormControl>
  );
}

/**
 * A control the server refuses for this account, disabled with the reason as its tooltip (the
 * span carries the tooltip and the focus: a disabled control gets no pointer events).
 */
function Refused({
  reason,
  label,
  children,
}: {
  reason: string | null;
  label: string;
  children: ReactElement;
}) {
  if (!reason) return children;
  return (
    <Tooltip title={reason}>
      <span tabIndex={0} aria-label={`${label}: ${reason}`} data-refused={reason}>
        {children}
      </span>
    </Tooltip>
  );
}

/** The API's 400/409 at the field it names (`tenants[1]` is the tenants field), else undefined. */
const fieldError = (error: unknown, field: string) =>
  error instanceof ApiError && error.field?.split(/[.[]/)[0] === field ? error.message : undefined;

const tenantsOf = (text: string) => {
  const list = text
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  return list.length ? list : null;
};

function AddUser() {
  const create = useCreateUser();
  const [form, setForm] = useState({ username: '', password: '', role: 'viewer', tenants: '' });
  const set = (k: keyof typeof form) => (e: { target: { value: string } }) =>
    setForm((f) => ({ ...f, [k]: e.target.value }));
  const err = (f: string) => fieldError(create.error, f);
  const taken = create.error instanceof ApiError && create.error.status === 409;
  return (
    <Box
      component="form"
      aria-label="Add a user"
      onSubmit={(e) => {
        e.preventDefault();
        create.mutate(
          { ...form, tenants: tenantsOf(form.tenants) },
          {
            onSuccess: (u) => {
              toast(`${u.username} added as ${u.role}`);
              setForm({ username: '', password: '', role: 'viewer', tenants: '' });
            },
          },
        );
      }}
      sx={{
        display: 'grid',
        gap: 1.5,
        gridTemplateColumns: { xs: '1fr', sm: '1fr 1fr', lg: '1fr 1fr 160px 1fr auto' },
        alignItems: 'start',
      }}
    >
      <TextField
        label="Username"
        size="small"
        required
        value={form.username}
        onChange={set('username')}
        error={!!err('username') || taken}
        helperText={err('username') ?? (taken ? 'This name is taken' : ' ')}
      />
      <TextField
        label="Password"
        type="password"
        size="small"
        required
        autoComplete="new-password"
        value={form.password}
        onChange={set('password')}
        error={!!err('password')}
        helperText={err('password') ?? ' '}
      />
      <RoleSelect
        id="new-user-role"
        value={form.role}
        onChange={(r) => set('role')({ target: { value: r } })}
      />
      <TextField
        label="Tenants (comma-separated; empty: all)"
        size="small"
        value={form.tenants}
        onChange={set('tenants')}
        error={!!err('tenants')}
        helperText={err('tenants') ?? ' '}
      />
      <Button type="submit" variant="contained" disabled={create.isPending}>
        Add user
      </Button>
      {create.isError && !taken && !(create.error instanceof ApiError && create.error.field) && (
        <Alert severity="error" sx={{ gridColumn: '1 / -1' }}>
          {errorText(create.error)}
        </Alert>
      )}
    </Box>
  );
}

function PasswordDialog({ user, onClose }: { user: User; onClose: () => void }) {
  const reset = useResetPassword();
  const [password, setPassword] = useState('');
  const err = fieldError(reset.error, 'password');
  return (
    <Dialog open onClose={onClose} aria-labelledby="password-title">
      <DialogTitle id="password-title">New password for {user.username}</DialogTitle>
      <DialogContent>
        <TextField
          label="New password"
          type="password"
          autoComplete="new-password"
          size="small"
          fullWidth
          sx={{ mt: 1 }}
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          error={!!err}
          helperText={err ?? (reset.isError ? errorText(reset.error) : ' ')}
        />
      </DialogContent>
      <DialogActions>
        <Button onClick={onClose}>Cancel</Button>
        <Button
          variant="contained"
          disabled={!password || reset.isPending}
          onClick={() =>
            reset.mutate(
              { username: user.username, password },
              {
                onSuccess: () => {
                  toast(`Password of ${user.username} changed`);
                  onClose();
                },
              },
            )
          }
        >
          Set password
        </Button>
      </DialogActions>
    </Dialog>
  );
}

/** Which tenants the account may act for: a list, or every tenant when left empty. */
function TenantsDialog({ user, onClose }: { user: User; onClose: () => void }) {
  const update = useUpdateUser();
  const [text, setText] = useState(user.tenants?.join(', ') ?? '');
  const err = fieldError(update.error, 'tenants');
  const save = () => {
    const tenants = tenantsOf(text);
    update.mutate(
      { username: user.username, patch: { tenants } },
      {
        onSuccess: () => {
          toast(`${user.username} may act for ${tenants ? tenants.join(', ') : 'every tenant'}`);
          onClose();
        },
      },
    );
  };
  return (
    <Dialog open onClose={onClose} aria-labelledby="tenants-title">
      <Box
        component="form"
        onSubmit={(e) => {
          e.preventDefault();
          save();
        }}
      >
        <DialogTitle id="tenants-title">Tenants of {user.username}</DialogTitle>
        <DialogContent>
          <TextField
            label="Tenants (comma-separated; empty: all)"
            size="small"
            fullWidth
            autoFocus
            sx={{ mt: 1 }}
            value={text}
            onChange={(e) => setText(e.target.value)}
            error={!!err || update.isError}
            helperText={
              err ??
              (update.isError
                ? errorText(update.error)
                : 'Ends the account’s open sessions: the next sign-in has the new tenants.')
            }
          />
        </DialogContent>
        <DialogActions>
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" variant="contained" disabled={update.isPending}>
            Save tenants
          </Button>
        </DialogActions>
      </Box>
    </Dialog>
  );
}

function UserRow({
  u,
  onPassword,
  onTenants,
}: {
  u: User;
  onPassword: (u: User) => void;
  onTenants: (u: User) => void;
}) {
  const update = useUpdateUser();
  // The API refuses an admin's change of their own role and disabling themselves (400): the
  // last admin could lock everyone out.
  const self = useSession((s) => s.user?.username === u.username);
  const toggle = u.disabled ? `Enable ${u.username}` : `Disable ${u.username}`;
  const patch = (p: Parameters<typeof update.mutate>[0]['patch'], done: string) =>
    update.mutate(
      { username: u.username, patch: p },
      {
        onSuccess: () => toast(done),
        onError: (e) => toast(errorText(e), 'error'),
      },
    );
  return (
    <Box
      component="li"
      data-user={u.username}
      sx={{
        border: 1,
        borderColor: 'divider',
        borderRadius: 1,
        p: 1.5,
        display: 'grid',
        gap: 1,
        // The list's columns, so that every row's role select and buttons line up.
        gridColumn: '1 / -1',
        gridTemplateColumns: 'subgrid',
        alignItems: 'center',
      }}
    >
      <Box sx={{ minWidth: 0 }}>
        <Typography sx={{ fontWeight: 600, overflowWrap: 'anywhere' }}>
          {u.username} {u.disabled && <Chip size="small" label="disabled" color="warning" />}
        </Typography>
        <Typography variant="caption" color="text.secondary">
          since {fmtTime(u.created_at)} · changed {fmtTime(u.updated_at)}
        </Typography>
      </Box>
      <Refused
        reason={self ? 'You cannot change your own role' : null}
        label={`Role of ${u.username}`}
      >
        <RoleSelect
          id={`role-${u.username}`}
          value={u.role}
          disabled={update.isPending || self}
          onChange={(r) => patch({ role: r }, `${u.username} is now ${r}`)}
        />
      </Refused>
      <Typography variant="body2" sx={{ overflowWrap: 'anywhere' }}>
        Tenants: {u.tenants ? u.tenants.join(', ') : 'all'}
      </Typography>
      <Stack direction="row" spacing={1}>
        <Refused reason={self && !u.disabled ? 'You cannot disable yourself' : null} label={toggle}>
          <Button
            size="small"
            variant="outlined"
            color={u.disabled ? 'primary' : 'warning'}
            disabled={update.isPending || (self && !u.disabled)}
            onClick={() =>
              patch(
                { disabled: !u.disabled },
                `${u.username} ${u.disabled ? 'enabled' : 'disabled'}`,
              )
            }
          >
            {toggle}
          </Button>
        </Refused>
        <Button
          size="small"
          onClick={() => onTenants(u)}
          aria-label={`Edit tenants of ${u.username}`}
        >
          Edit tenants
        </Button>
        <Button size="small" onClick={() => onPassword(u)}>
          Reset password
        </Button>
      </Stack>
    </Box>
  );
}

/** Accounts (admin:users): add one, change a role or its tenants, disable, reset a password. */
export default function UsersPage() {
  const users = useUsers();
  useUsersLive();
  const [params, setParams] = useSearchParams();
  const q = params.get('q') ?? '';
  const [password, setPassword] = useState<User | null>(null);
  const [tenants, setTenants] = useState<User | null>(null);
  const shown = (users.data?.users ?? []).filter((u) =>
    u.username.toLowerCase().includes(q.trim().toLowerCase()),
  );
  return (
    <Stack spacing={3}>
      <Typography variant="h4" component="h1">
        Users
      </Typography>
      <Paper sx={{ p: { xs: 1.5, sm: 2 } }}>
        <Typography variant="h6" component="h2" gutterBottom>
          Add a user
        </Typography>
        <AddUser />
      </Paper>
      <Paper sx={{ p: { xs: 1.5, sm: 2 } }}>
        <Stack spacing={2}>
          <TextField
            label="Search users"
            type="search"
            size="small"
            value={q}
            onChange={(e) =>
              setParams(e.target.value ? { q: e.target.value } : {}, { replace: true })
            }
          />
          <Typography variant="body2" color="text.secondary">
            A changed role, tenant scope or status ends the person's open sessions.
          </Typography>
          {users.isPending ? (
            <TableSkeleton />
          ) : users.isError ? (
            <ErrorAlert error={users.error} what="the users" />
          ) : shown.length === 0 ? (
            <EmptyState title="No user matches" />
          ) : (
            <Box
              component="ul"
              aria-label="Users"
              sx={{
                listStyle: 'none',
                m: 0,
                p: 0,
                display: 'grid',
                gap: 1,
                gridTemplateColumns: {
                  xs: '1fr',
                  md: 'minmax(0, 1.2fr) 160px minmax(0, 1fr) auto',
                },
              }}
            >
              {shown.map((u) => (
                <UserRow key={u.username} u={u} onPassword={setPassword} onTenants={setTenants} />
              ))}
            </Box>
          )}
        </Stack>
      </Paper>
      {password && <PasswordDialog user={password} onClose={() => setPassword(null)} />}
      {tenants && <TenantsDialog user={tenants} onClose={() => setTenants(null)} />}
    </Stack>
  );
}
