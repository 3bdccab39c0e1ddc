/** Placeholder: `/v1/configs` routes are being written (see the configs task). */
import type { FastifyInstance } from 'fastify';
import type { HttpContext } from './context.js';

/** Registers the config routes. */
export function registerConfigRoutes(_app: FastifyInstance, _ctx: HttpContext): void {}
