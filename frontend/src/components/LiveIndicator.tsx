import { Chip } from '@mui/material';
import { useLiveStatus } from '@/lib/live/LiveProvider';

/** live / reconnecting / caught up N events: the state of the tab's one WebSocket. */
export function LiveIndicator() {
  const s = useLiveStatus();
  let label: string;
  let color: 'success' | 'warning' | 'default' | 'info';
  switch (s.state) {
    case 'live':
      label = s.caughtUp > 0 ? `Live · caught up ${s.caughtUp} events` : 'Live';
      color = 'success';
      break;
    case 'catching_up':
      label = `Catching up · ${s.caughtUp} events`;
      color = 'info';
      break;
    case 'reconnecting':
      label = `Reconnecting${s.attempt > 1 ? ` (attempt ${s.attempt})` : ''}`;
      color = 'warning';
      break;
    case 'connecting':
      label = 'Connecting';
      color = 'default';
      break;
    default:
      label = 'Offline';
      color = 'default';
  }
  const detail =
    s.state === 'catching_up' && s.catchUpTo !== null
      ? `Catching up to event position ${s.catchUpTo}`
      : s.lastPosition !== null
        ? `Last event position ${s.lastPosition}`
        : 'No event received yet';
  // A native title, not MUI's Tooltip: the shell then loads no popper code.
  return (
    <Chip
      title={detail}
      size="small"
      color={color}
      label={label}
      role="status"
      aria-live="polite"
      aria-label={`Live updates: ${label}`}
      data-live-state={s.state}
      sx={{ fontWeight: 600 }}
    />
  );
}
