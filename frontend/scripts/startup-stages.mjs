// The modules main.tsx imports one after another at start-up, each evaluated in a task of its
// own (evaluating the whole start-up graph at once was one task of 40-50 ms on this machine,
// four times that on a phone). They are part of every page's initial load: vite.config.ts puts
// each in one chunk and has index.html fetch those at once (<link rel="modulepreload">), and
// scripts/check-budget.mjs counts what index.html fetches in the initial budget. Paths of the
// modules under frontend/.
export const startupStages = ['src/app/reactDom.ts', 'src/app/App.tsx'];
