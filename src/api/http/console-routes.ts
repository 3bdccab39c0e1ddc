/**
 * The web console (issue 14) as static files at `/ui/`: the Vite build in `dist/web/`, hashed
 * assets cached for a year (`immutable`), `index.html` revalidated on every load, a strict
 * Content-Security-Policy on every answer, precompressed `.br`/`.gz` copies when the browser takes
 * them, and the SPA fallback: any other path under `/ui/` (a deep link such as `/ui/keys/app/x`)
 * gets `index.html`, whose router shows that view. The files are public (they hold no data); every
 * API call the console makes is authenticated as usual. See docs/console.md.
 */
import fastifyStatic from '@fastify/static';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Where the console is served. */
export const CONSOLE_PREFIX = '/ui';

/**
 * The console's Content-Security-Policy: scripts, styles and connections from this origin only
 * (`connect-src 'self'` covers the same-origin WebSocket of live updates), no inline script, no
 * `eval`, no plugins, no framing, no `<base>` rewriting. Values and keys are put in the page as
 * text, so even a stored `<script>` could not run; this is the second wall.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ');

/** `Cache-Control` of hashed assets (their name changes with their content). */
const IMMUTABLE = 'public, max-age=31536000, immutable';

/** The built console: `dist/web/` beside `dist/src/` (this file is `dist/src/api/http/console-routes.js`). */
export function defaultConsoleRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '../../../web');
}

function securityHeaders(reply: FastifyReply): void {
  void reply.header('content-security-policy', CONSOLE_CSP);
  void reply.header('x-content-type-options', 'nosniff');
  void reply.header('referrer-policy', 'no-referrer');
  void reply.header('x-frame-options', 'DENY');
  void reply.header('cross-origin-opener-policy', 'same-origin');
}

/**
 * Registers the console under `/ui/` on `app`. Without a build in `root` (a checkout where
 * `npm run build` has not run), `/ui/` answers 503 saying how to build it instead of failing the
 * node's start-up.
 * @param root the directory holding `index.html` and `assets/` (default {@link defaultConsoleRoot}).
 */
export async function registerConsole(app: FastifyInstance, root = defaultConsoleRoot()): Promise<void> {
  const built = existsSync(join(root, 'index.html'));
  await app.register(
    async (scope) => {
      scope.addHook('onRequest', (_req, reply, done) => {
        securityHeaders(reply);
        done();
      });
      if (!built) {
        const notBuilt = async (_req: FastifyRequest, reply: FastifyReply) =>
          reply.status(503).send({ error: { code: 'unavailable', message: 'the web console is not built on this node: run `npm run build`' } });
        scope.get('/', notBuilt);
        scope.get('/*', notBuilt);
        return;
      }
      await scope.register(fastifyStatic, {
        root,
        prefix: '/',
        wildcard: true,
        index: false,
        redirect: false,
        cacheControl: false,
        preCompressed: true,
        decorateReply: true,
        setHeaders: (res, path) => {
          res.setHeader('cache-control', path.includes(`${'/'}assets${'/'}`) ? IMMUTABLE : 'no-cache');
        },
      });
      scope.get('/', (req, reply) => {
        if ((req.url.split('?')[0] ?? '') === CONSOLE_PREFIX) return reply.redirect(`${CONSOLE_PREFIX}/`, 301);
        return reply.header('cache-control', 'no-cache').sendFile('index.html');
      });
      // Not a file: a view of the single-page app (deep link), unless it asked for an asset.
      scope.setNotFoundHandler((req, reply) => {
        const path = req.url.split('?')[0] ?? '';
        if ((req.method !== 'GET' && req.method !== 'HEAD') || path.startsWith(`${CONSOLE_PREFIX}/assets/`)) {
          void reply.status(404).send({ error: { code: 'not_found', message: `no console file ${path}` } });
          return;
        }
        void reply.header('cache-control', 'no-cache').sendFile('index.html');
      });
    },
    { prefix: CONSOLE_PREFIX },
  );
}
