/**
 * The PromQL syntax tree the engine evaluates, built from `@prometheus-io/lezer-promql`'s parse
 * tree by `parseExpr`. Times and durations are integer milliseconds.
 */
import type { Matcher } from '../tsdb/index.js';

/** The four PromQL value types (Prometheus's `ValueType`). */
export type ValueType = 'scalar' | 'vector' | 'matrix' | 'string';

/** An `@` modifier: a fixed time in ms, or the query's `start()` / `end()`. */
export type AtModifier = { kind: 'time'; ms: number } | { kind: 'start' } | { kind: 'end' };

/** A number literal (`1`, `1e3`, `0x1f`, `Inf`, `NaN`, or a duration such as `5m` as seconds). */
export interface NumberLiteral {
  kind: 'number';
  value: number;
}

/** A string literal, with escapes resolved. */
export interface StringLiteral {
  kind: 'string';
  value: string;
}

/** An instant vector selector such as `http_requests_total{job=~"api|web"} offset 5m @ 1700000000`. */
export interface VectorSelector {
  kind: 'vectorSelector';
  /** The metric name when written before the braces (also present as a `__name__` matcher). */
  name: string | undefined;
  matchers: Matcher[];
  offsetMs: number;
  at: AtModifier | undefined;
}

/** A range vector selector such as `x[5m]`; offset and `@` live on the inner selector. */
export interface MatrixSelector {
  kind: 'matrixSelector';
  selector: VectorSelector;
  rangeMs: number;
}

/** A subquery `expr[range:step]`; `stepMs` undefined means the default evaluation interval. */
export interface SubqueryExpr {
  kind: 'subquery';
  expr: Expr;
  rangeMs: number;
  stepMs: number | undefined;
  offsetMs: number;
  at: AtModifier | undefined;
}

/** A function call such as `rate(x[5m])`. */
export interface Call {
  kind: 'call';
  func: string;
  args: Expr[];
}

/** The aggregation operators PromQL has. */
export type AggregateOp =
  | 'sum' | 'avg' | 'min' | 'max' | 'count' | 'group' | 'stddev' | 'stdvar'
  | 'topk' | 'bottomk' | 'quantile' | 'count_values';

/** An aggregation such as `sum by (job) (x)` or `topk(3, x)`. */
export interface AggregateExpr {
  kind: 'aggregate';
  op: AggregateOp;
  expr: Expr;
  /** The first argument of topk, bottomk, quantile and count_values. */
  param: Expr | undefined;
  grouping: string[];
  without: boolean;
}

/** Binary operators, by Prometheus's spelling. */
export type BinaryOp =
  | '+' | '-' | '*' | '/' | '%' | '^' | 'atan2'
  | '==' | '!=' | '>' | '<' | '>=' | '<='
  | 'and' | 'or' | 'unless';

/** How the two sides of a vector/vector operation are matched. */
export interface VectorMatching {
  card: 'one-to-one' | 'many-to-one' | 'one-to-many' | 'many-to-many';
  /** `on(...)` when true, `ignoring(...)` when false (an absent clause is `ignoring()`). */
  on: boolean;
  labels: string[];
  /** The extra labels of `group_left(...)` / `group_right(...)`. */
  include: string[];
}

/** A binary operation; `matching` is set when both sides are instant vectors. */
export interface BinaryExpr {
  kind: 'binary';
  op: BinaryOp;
  lhs: Expr;
  rhs: Expr;
  returnBool: boolean;
  matching: VectorMatching | undefined;
}

/** Unary minus (or plus). */
export interface UnaryExpr {
  kind: 'unary';
  op: '-' | '+';
  expr: Expr;
}

/** A parenthesised expression. */
export interface ParenExpr {
  kind: 'paren';
  expr: Expr;
}

/** Any PromQL expression. */
export type Expr =
  | NumberLiteral | StringLiteral | VectorSelector | MatrixSelector | SubqueryExpr
  | Call | AggregateExpr | BinaryExpr | UnaryExpr | ParenExpr;
