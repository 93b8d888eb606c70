/// <reference types="vitest/config" />
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// `npm run dev` proxies the API to a running `controlplane serve` (CP_API, default :8000).
// The gateway refuses cookie-authenticated WebSocket upgrades from another origin, so the
// proxy presents the API's own origin.
const api = process.env.CP_API ?? 'http://127.0.0.1:8000';
const apiPaths = [
  '/auth',
  '/budget',
  '/governance',
  '/stats',
  '/system',
  '/readyz',
  '/openapi.json',
  '/dlq',
  '/circuit-breakers',
  '/audit',
  '/sandbox',
  '/users',
];
const proxy = Object.fromEntries(
  apiPaths.map((p) => [
    p,
    {
      target: api,
      changeOrigin: true,
      // A browser navigation to an app route (e.g. /budget) is the app's, not the API's.
      bypass: (req: { headers: { accept?: string } }) =>
        req.headers.accept?.includes('text/html') ? '/index.html' : undefined,
    },
  ]),
);

const backgroundChunks = /(^|\/)(EntryDialog|RedriveDialog|RedriveProgress)-[^/]*\.js$/;

export default defineConfig({
  plugins: [react()],
  resolve: { alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) } },
  server: {
    proxy: {
      ...proxy,
      '/ws': {
        target: api.replace(/^http/, 'ws'),
        ws: true,
        changeOrigin: true,
        headers: { origin: api },
      },
    },
  },
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    sourcemap: false,
    manifest: true,
    modulePreload: {
      // The Dead letters page's dialogs load in the background once the page is up
      // (DlqPage.tsx): no <link rel="modulepreload"> per module they import (appending some
      // thirty links was one task of 20-25 ms on a busy machine, a long task on a phone); the
      // browser fetches their imports as it reads them. Their styles still load first.
      resolveDependencies: (file, deps) =>
        backgroundChunks.test(file) ? deps.filter((d) => d.endsWith('.css')) : deps,
    },
    // Monaco's chunk (Sandbox page) is ~3.7 MB; scripts/check-budget.mjs is the real gate.
    chunkSizeWarningLimit: 4000,
  },
  test: {
    environment: 'jsdom',
    globals: true,
    setupFiles: ['./test/setup.ts'],
    include: ['src/**/*.test.{ts,tsx}', 'test/**/*.test.{ts,tsx}'],
  },
});
