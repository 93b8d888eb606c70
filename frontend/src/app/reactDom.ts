// React DOM, the first start-up stage (main.tsx, scripts/startup-stages.mjs): a module of
// the app's own, so that its chunk has a name of its own in Vite's manifest.
export { createRoot } from 'react-dom/client';
