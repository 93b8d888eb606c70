// Everything the app takes from its environment, in one place.
const base = (import.meta.env.VITE_API_BASE as string | undefined) ?? '';

export const env = {
  /** Prefix of API paths; empty = the origin that served the app (production and the dev proxy). */
  apiBase: base,
  /** The live-updates WebSocket of the same origin. */
  wsUrl(): string {
    const origin = base || window.location.origin;
    return origin.replace(/^http/, 'ws') + '/ws';
  },
  /** Back-off of the WebSocket between reconnects. */
  wsBackoff: { initialMs: 500, maxMs: 15_000 },
} as const;
