import { Box, LinearProgress, Typography } from '@mui/material';

/** (used + reserved) / limit as a bar; coloured by how close to the limit. */
export function UtilisationBar({
  percent,
  warning = 80,
}: {
  percent?: number | null;
  warning?: number;
}) {
  if (percent === undefined || percent === null) {
    return (
      <Typography variant="body2" color="text.secondary">
        –
      </Typography>
    );
  }
  const colour = percent >= 100 ? 'error' : percent >= warning ? 'warning' : 'primary';
  return (
    <Box sx={{ display: 'flex', alignItems: 'center', gap: 1, minWidth: 0 }}>
      <LinearProgress
        variant="determinate"
        value={Math.min(100, percent)}
        color={colour}
        aria-label={`Utilisation ${percent.toFixed(1)} percent`}
        sx={{ flexGrow: 1, height: 8, borderRadius: 4 }}
      />
      <Typography
        variant="body2"
        sx={{ width: 52, textAlign: 'right', fontVariantNumeric: 'tabular-nums' }}
      >
        {percent.toFixed(1)}%
      </Typography>
    </Box>
  );
}
