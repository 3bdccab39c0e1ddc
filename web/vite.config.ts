// The web console's build (issue 14): Vite with Preact's JSX through Vite's own oxc transform,
// output to dist/web/ (served at /ui/ by src/api/http/console-routes.ts). Hashed file names let
// the server mark assets immutable; .gz and .br copies are written beside them so the server can
// send them precompressed (@fastify/static `preCompressed`) without compressing per request.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

/**
 * Writes `name.gz` and `name.br` beside every JS, CSS, HTML and SVG file once the bundle is on
 * disk (after Vite's last rewrites of the chunks, such as its preload helper).
 */
function precompress(): Plugin {
  return {
    name: 'beacon-precompress',
    apply: 'build',
    writeBundle(opts, bundle) {
      const dir = opts.dir ?? '';
      for (const name of Object.keys(bundle)) {
        if (!/\.(js|css|html|svg)$/.test(name)) continue;
        const file = join(dir, name);
        const buf = readFileSync(file);
        if (buf.byteLength < 1024) continue;
        writeFileSync(`${file}.gz`, gzipSync(buf, { level: 9 }));
        writeFileSync(`${file}.br`, brotliCompressSync(buf, { params: { [constants.BROTLI_PARAM_QUALITY]: 9 } }));
      }
    },
  };
}

export default defineConfig({
  root,
  base: '/ui/',
  publicDir: false,
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    assetsDir: 'assets',
    // Every asset is a file: the Content-Security-Policy allows no inline script or style.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    reportCompressedSize: false,
    chunkSizeWarningLimit: 300,
    // The SDK loads ajv only for a live config's schema, which the console never uses (and ajv's
    // compiled validators would need `eval`, which the console's CSP forbids): leave it out.
    rolldownOptions: { external: ['ajv'] },
  },
  plugins: [precompress()],
});
