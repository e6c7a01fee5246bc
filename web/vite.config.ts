/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The production build lands in dist/ and is embedded into the server binary
// (crates/server/build.rs + src/web.rs). `npm run dev` proxies the API to a local server.
//
// The server sends a strict Content-Security-Policy (crates/server/src/browser.rs):
// scripts, styles, images and fonts only from the app's own origin. So the build must
// not inline anything: no `data:` URLs for small assets (`assetsInlineLimit: 0`), no
// inline <script>/<style> in index.html (the favicon is public/favicon.svg). The e2e
// test `security.e2e.test.mjs` fails on any CSP violation.
const target = process.env.SOCKET_HUB_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    assetsInlineLimit: 0,
  },
  server: {
    proxy: {
      '/api': target,
      '/ws': { target: target.replace(/^http/, 'ws'), ws: true },
    },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
