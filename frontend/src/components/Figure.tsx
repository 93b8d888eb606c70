import { Box, Typography } from '@mui/material';

/** A labelled headline number. */
export function Figure({ label, value }: { label: string; value: string }) {
  return (
    <Box>
      <Typography variant="body2" color="text.secondary">
        {label}
      </Typography>
      <Typography
        variant="h6"
        component="p"
        sx={{ fontVariantNumeric: 'tabular-nums' }}
        data-figure={label}
      >
        {value}
      </Typography>
    </Box>
  );
}
