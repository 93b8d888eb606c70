import { NavLink } from 'react-router-dom';
import { hasPermission, useSession } from '@/lib/session';
import { navItems } from './nav';

/**
 * The pages the role may open: plain links styled once (index.html's `.pages`), not a
 * ListItemButton with its ripple per page: the navigation renders on every page load.
 */
export function PageNav({ onNavigate }: { onNavigate?: () => void }) {
  const user = useSession((s) => s.user);
  return (
    <nav aria-label="Pages" className="pages">
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
    </nav>
  );
}
