/** Node wiring: options, start-up and shutdown of one Beacon process. */
export { startNode, VERSION } from './node.js';
export type { BeaconNode, NodeOptions } from './node.js';
