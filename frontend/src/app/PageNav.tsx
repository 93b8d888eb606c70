import { NavLink } from 'react-router-dom';
import { Box, type Theme } from '@mui/material';
import { hasPermission, useSession } from '@/lib/session';
import { navItems } from './nav';

// Plain links styled once for the list (not a ListItemButton, with its ripple, per page): the
// navigation renders on every page load.
const navSx = (t: Theme) => ({
  '& ul': { listStyle: 'none', m: 0, py: 1, px: 0 },
  '& a': {
    display: 'block',
    px: 2,
    py: 1.5,
    color: t.palette.text.primary,
    textDecoration: 'none',
    fontSize: t.typography.body1.fontSize,
    lineHeight: 1.5,
  },
  '& a:hover': { bgcolor: t.palette.action.hover },
  '& a:focus-visible': { outline: `2px solid ${t.palette.primary.main}`, outlineOffset: -2 },
  '& a.active': { bgcolor: t.palette.action.selected, fontWeight: 600 },
  '& small': { display: 'block', color: t.palette.text.secondary },
});

/** The pages the role may open. */
export function PageNav({ onNavigate }: { onNavigate?: () => void }) {
  const user = useSession((s) => s.user);
  return (
    <Box component="nav" aria-label="Pages" sx={navSx}>
      <ul>
        {navItems
          .filter((i) => hasPermission(user, i.permission))
          .map((i) => (
            <li key={i.path}>
              <NavLink to={i.path} end={i.path === '/'} onClick={onNavigate}>
                {i.label}
                {i.later && <small>part 2</small>}
              </NavLink>
            </li>
          ))}
      </ul>
    </Box>
  );
}
