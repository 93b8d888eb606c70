import { useLiveStatus } from '@/lib/live/LiveProvider';

/**
 * live / reconnecting / caught up N events: the state of the tab's one WebSocket. A chip of
 * the shell's CSS (index.html's `.live-chip`), not MUI's: the shell renders no MUI component.
 */
export function LiveIndicator() {
  const s = useLiveStatus();
  let label: string;
  let tone: 'success' | 'warning' | '' | 'info';
  switch (s.state) {
    case 'live':
      label = s.caughtUp > 0 ? `Live · caught up ${s.caughtUp} events` : 'Live';
      tone = 'success';
      break;
    case 'catching_up':
      label = `Catching up · ${s.caughtUp} events`;
      tone = 'info';
      break;
    case 'reconnecting':
      label = `Reconnecting${s.attempt > 1 ? ` (attempt ${s.attempt})` : ''}`;
      tone = 'warning';
      break;
    case 'connecting':
      label = 'Connecting';
      tone = '';
      break;
    default:
      label = 'Offline';
      tone = '';
  }
  const detail =
    s.state === 'catching_up' && s.catchUpTo !== null
      ? `Catching up to event position ${s.catchUpTo}`
      : s.lastPosition !== null
        ? `Last event position ${s.lastPosition}`
        : 'No event received yet';
  // A native title, not MUI's Tooltip: the shell then loads no popper code.
  return (
    <span
      className={tone ? `live-chip ${tone}` : 'live-chip'}
      title={detail}
      role="status"
      aria-live="polite"
      aria-label={`Live updates: ${label}`}
      data-live-state={s.state}
    >
      {label}
    </span>
  );
}
