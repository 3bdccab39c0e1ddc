// The web console's build (issue 14): Vite with Preact's JSX through Vite's own oxc transform,
// output to dist/web/ (served at /ui/ by src/api/http/console-routes.ts). Hashed file names let
// the server mark assets immutable; .gz and .br copies are written beside them so the server can
// send them precompressed (@fastify/static `preCompressed`) without compressing per request.
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

/** Emits `name.gz` and `name.br` beside every JS, CSS, HTML and SVG file of the bundle. */
function precompress(): Plugin {
  return {
    name: 'beacon-precompress',
    apply: 'build',
    generateBundle(_opts, bundle) {
      for (const [name, item] of Object.entries(bundle)) {
        if (!/\.(js|css|html|svg)$/.test(name)) continue;
        const source = item.type === 'chunk' ? item.code : item.source;
        const buf = typeof source === 'string' ? Buffer.from(source) : Buffer.from(source);
        if (buf.byteLength < 1024) continue;
        this.emitFile({ type: 'asset', fileName: `${name}.gz`, source: gzipSync(buf, { level: 9 }) });
        this.emitFile({
          type: 'asset',
          fileName: `${name}.br`,
          source: brotliCompressSync(buf, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }),
        });
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
  },
  plugins: [precompress()],
});
