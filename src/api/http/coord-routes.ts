/** Placeholder: `/v1/locks`, `/v1/elections`, `/v1/sequences` are being written (see the coordination task). */
import type { FastifyInstance } from 'fastify';
import type { HttpContext } from './context.js';

/** Registers the coordination routes. */
export function registerCoordRoutes(_app: FastifyInstance, _ctx: HttpContext): void {}
