import { Drawer, Toolbar, Typography } from '@mui/material';
import { useSession } from '@/lib/session';
import { Nav } from './Nav';

/** The navigation of a narrow screen, in a drawer (loaded the first time it opens). */
export default function MobileNav({
  open,
  onClose,
  width,
}: {
  open: boolean;
  onClose: () => void;
  width: number;
}) {
  const user = useSession((s) => s.user);
  return (
    <Drawer
      variant="temporary"
      open={open}
      onClose={onClose}
      sx={{ '& .MuiDrawer-paper': { width } }}
    >
      <Toolbar />
      {user && (
        <Typography variant="body2" sx={{ px: 2, pt: 1, color: 'text.secondary' }}>
          {user.username} · {user.role}
        </Typography>
      )}
      <Nav onNavigate={onClose} />
    </Drawer>
  );
}
