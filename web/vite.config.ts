/// <reference types="vitest/config" />
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';

// The production build lands in dist/ and is embedded into the server binary
// (crates/server/build.rs + src/web.rs). `npm run dev` proxies the API to a local server.
//
// The server sends a strict Content-Security-Policy (crates/server/src/browser.rs):
// scripts, styles, images and fonts only from the app's own origin. So the build must
// not inline anything: no `data:` URLs for small assets (`assetsInlineLimit: 0`), no
// inline <script>/<style> in index.html (the favicon is public/favicon.svg). The e2e
// test `security.e2e.test.mjs` fails on any CSP violation.
//
// The service worker (src/sw/sw.ts) is a second entry, emitted as dist/sw.js; the
// `shellManifest` plugin below writes the list of the build's files into it.
const target = process.env.SOCKET_HUB_URL ?? 'http://127.0.0.1:8080';

/** Where the service worker's source marks the spot for the precache list. */
const MARKER = 'self.__SHELL_MANIFEST';

/** Every file under `dir`, as paths relative to it with `/` separators. */
function filesUnder(dir: string): string[] {
  let out: string[] = [];
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out = out.concat(filesUnder(path).map((f) => `${e.name}/${f}`));
    else if (e.isFile()) out.push(relative(dir, path).split('\\').join('/'));
  }
  return out;
}

/**
 * Injects the app shell into sw.js: every file of the build (bundle and `public/`) but
 * sw.js itself, and a version hashed from their contents, so each build that changes any
 * file gets a new worker and a new cache (src/sw/rules.ts `ShellManifest`).
 */
function shellManifest(): Plugin {
  let publicDir = '';
  return {
    name: 'socket-hub-shell-manifest',
    apply: 'build',
    enforce: 'post',
    configResolved(config) {
      publicDir = config.publicDir;
    },
    generateBundle(_options, bundle) {
      const sw = bundle['sw.js'];
      if (!sw || sw.type !== 'chunk') return this.error('sw.js is missing from the bundle');
      // A classic worker script cannot import: the app must share no module with it.
      if (sw.imports.length || sw.dynamicImports.length) return this.error(`sw.js imports ${sw.imports.join(', ')}`);
      const hash = createHash('sha256');
      const files: string[] = [];
      const add = (name: string, content: string | Uint8Array) => {
        files.push(`/${name}`);
        hash.update(name).update('\0').update(content).update('\0');
      };
      for (const name of Object.keys(bundle).sort()) {
        const file = bundle[name];
        if (name === 'sw.js') continue;
        add(name, file.type === 'chunk' ? file.code : file.source);
      }
      if (publicDir) for (const name of filesUnder(publicDir).sort()) add(name, readFileSync(join(publicDir, name)));
      if (!files.includes('/index.html')) return this.error('index.html is missing from the bundle');
      const version = hash.digest('hex').slice(0, 16);
      if (!sw.code.includes(MARKER)) return this.error(`${MARKER} not found in sw.js`);
      sw.code = sw.code.replace(MARKER, JSON.stringify({ version, files }));
    },
  };
}

export default defineConfig({
  plugins: [react(), shellManifest()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    assetsInlineLimit: 0,
    rollupOptions: {
      input: {
        index: fileURLToPath(new URL('index.html', import.meta.url)),
        sw: fileURLToPath(new URL('src/sw/sw.ts', import.meta.url)),
      },
      output: {
        // The worker keeps a fixed name at the root: its URL is its identity, and its
        // scope is the folder it is served from.
        entryFileNames: (chunk) => (chunk.name === 'sw' ? 'sw.js' : 'assets/[name]-[hash].js'),
      },
    },
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
