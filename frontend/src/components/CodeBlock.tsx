import { Box } from '@mui/material';

/** Preformatted text (JSON, a payload, a hex dump) in a focusable scrolling region. */
export function CodeBlock({
  label,
  children,
  testId,
  maxHeight = 360,
  color,
}: {
  label: string;
  children: string;
  testId?: string;
  maxHeight?: number;
  color?: string;
}) {
  return (
    <Box
      component="pre"
      tabIndex={0}
      role="region"
      aria-label={label}
      data-testid={testId}
      sx={{
        m: 0,
        p: 1.5,
        bgcolor: 'action.hover',
        color,
        borderRadius: 1,
        overflow: 'auto',
        maxHeight,
        fontSize: 13,
        fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, monospace',
        whiteSpace: 'pre',
      }}
    >
      {children}
    </Box>
  );
}
