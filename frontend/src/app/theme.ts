import { createTheme, type Theme } from '@mui/material/styles';

const fontFamily =
  'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif';

// One theme per mode, made once: main.tsx makes the first in a task of its own before React's
// first render (createTheme is 5-15 ms of one task on this machine).
const made = new Map<'light' | 'dark', Theme>();

export function makeTheme(mode: 'light' | 'dark'): Theme {
  let theme = made.get(mode);
  if (!theme) {
    theme = createOne(mode);
    made.set(mode, theme);
  }
  return theme;
}

function createOne(mode: 'light' | 'dark'): Theme {
  return createTheme({
    palette: {
      mode,
      primary: { main: mode === 'dark' ? '#90caf9' : '#1565c0' },
      // MUI's default orange fails WCAG AA contrast under white chip text.
      ...(mode === 'light'
        ? { warning: { main: '#b45309' } }
        : {
            // Light tones in the dark: MUI then picks dark chip text, which keeps AA contrast.
            error: { main: '#f28b82' },
            warning: { main: '#ffb74d' },
            success: { main: '#81c784' },
          }),
      background:
        mode === 'dark' ? { default: '#0f1115', paper: '#171a21' } : { default: '#f5f6f8' },
    },
    typography: { fontFamily },
    shape: { borderRadius: 8 },
    components: {
      MuiButton: { defaultProps: { disableElevation: true } },
      MuiLink: { defaultProps: { underline: 'hover' } },
      // Spacing by `gap`, not by Stack's margin rule `> :not(style) ~ :not(style)`: a sibling
      // rule whose right end matches any element makes Chromium restyle every child of every
      // parent it was tried on whenever a child comes or goes, so each frame of a scrolled
      // virtual list restyled all of its rows (421 elements a frame, not the 196 new ones).
      MuiStack: { defaultProps: { useFlexGap: true } },
    },
  });
}
