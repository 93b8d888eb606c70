import { createTheme, type Theme } from '@mui/material/styles';

const fontFamily =
  'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif';

export function makeTheme(mode: 'light' | 'dark'): Theme {
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
    },
  });
}
