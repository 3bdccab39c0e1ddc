/** Placeholder: `/v1/watch` (WebSocket) and `GET /v1/watch/*` (SSE) are being written (see the watch task). */
import type { FastifyInstance } from 'fastify';
import type { HttpContext } from './context.js';

/** Registers the watch routes. */
export function registerWatchRoutes(_app: FastifyInstance, _ctx: HttpContext): void {}
