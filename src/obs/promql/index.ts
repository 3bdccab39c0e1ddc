/** PromQL: parse and evaluate Prometheus queries over a {@link Querier} with Prometheus's semantics (pure: no I/O of its own). */
export type {
  Expr, ValueType, AtModifier, NumberLiteral, StringLiteral, VectorSelector, MatrixSelector, SubqueryExpr,
  Call, AggregateExpr, AggregateOp, BinaryExpr, BinaryOp, VectorMatching, UnaryExpr, ParenExpr,
} from './ast.js';
export { PromQLError } from './errors.js';
export type { PromQLErrorType } from './errors.js';
export { parseExpr, typeOf } from './parser.js';
export { instantQuery, rangeQuery, evaluateInstant, formatValue } from './engine.js';
export type { QueryOptions, PromValue, QueryData, InstantSample } from './engine.js';
export { parseSeriesNotation } from './series-notation.js';
export type { NotationPoint } from './series-notation.js';
export { createMemoryQuerier } from './memory-querier.js';
export { isStaleNaN, staleMask, writeStaleNaN } from './functions.js';
export type { MemoryQuerier } from './memory-querier.js';
