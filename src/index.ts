/** Beacon's server-side public surface: start a node in process, and the error catalogue. */
export { startNode, VERSION } from './node/index.js';
export type { BeaconNode, NodeOptions } from './node/index.js';
export * from './errors.js';
