/**
 * PromQL parsing: `@prometheus-io/lezer-promql` builds the concrete tree, this file turns it into
 * the engine's {@link Expr} and runs Prometheus's static checks (argument counts and types,
 * operator/operand rules). Every failure is a {@link PromQLError} `bad_data` whose message starts
 * with `line:col:` as Prometheus's parser words it.
 */
import { parser } from '@prometheus-io/lezer-promql';
import type { SyntaxNode } from '@lezer/common';
import { RE2JS } from 're2js';
import type { Matcher, MatchOp } from '../tsdb/index.js';
import type {
  AggregateExpr, AggregateOp, AtModifier, BinaryExpr, BinaryOp, Call, Expr, MatrixSelector, SubqueryExpr, ValueType,
  VectorMatching, VectorSelector,
} from './ast.js';
import { PromQLError } from './errors.js';

/** Argument types, optional-argument count and return type of each supported function (Prometheus `parser.Functions`). */
interface FunctionSignature {
  args: ValueType[];
  /** Trailing arguments that may be left out; -1: the last argument may be left out or repeated (Prometheus `Variadic`). */
  optional: number;
  ret: ValueType;
}

const v = 'vector' as const;
const m = 'matrix' as const;
const s = 'scalar' as const;
const str = 'string' as const;
const sig = (args: ValueType[], ret: ValueType, optional = 0): FunctionSignature => ({ args, optional, ret });

/** The functions the engine evaluates. */
export const FUNCTIONS: ReadonlyMap<string, FunctionSignature> = new Map<string, FunctionSignature>([
  ...['abs', 'ceil', 'floor', 'exp', 'ln', 'log2', 'log10', 'sqrt', 'sgn', 'acos', 'acosh', 'asin', 'asinh', 'atan', 'atanh',
    'cos', 'cosh', 'sin', 'sinh', 'tan', 'tanh', 'deg', 'rad', 'sort', 'sort_desc', 'timestamp', 'absent']
    .map((n) => [n, sig([v], v)] as const),
  ...['rate', 'irate', 'increase', 'delta', 'idelta', 'deriv', 'resets', 'changes', 'absent_over_time', 'avg_over_time',
    'min_over_time', 'max_over_time', 'sum_over_time', 'count_over_time', 'last_over_time', 'present_over_time',
    'stddev_over_time', 'stdvar_over_time']
    .map((n) => [n, sig([m], v)] as const),
  ...['day_of_month', 'day_of_week', 'day_of_year', 'days_in_month', 'hour', 'minute', 'month', 'year']
    .map((n) => [n, sig([v], v, 1)] as const),
  ['quantile_over_time', sig([s, m], v)],
  ['predict_linear', sig([m, s], v)],
  ['histogram_quantile', sig([s, v], v)],
  ['clamp', sig([v, s, s], v)],
  ['clamp_min', sig([v, s], v)],
  ['clamp_max', sig([v, s], v)],
  ['round', sig([v, s], v, 1)],
  ['label_replace', sig([v, str, str, str, str], v)],
  ['label_join', sig([v, str, str, str], v, -1)],
  ['scalar', sig([v], s)],
  ['vector', sig([s], v)],
  ['time', sig([], s)],
  ['pi', sig([], s)],
]);

const TYPE_NAME: Record<ValueType, string> = { scalar: 'scalar', vector: 'instant vector', matrix: 'range vector', string: 'string' };

const BINARY_OPS: Record<string, BinaryOp> = {
  Pow: '^', Mul: '*', Div: '/', Mod: '%', Atan2: 'atan2', Add: '+', Sub: '-', Eql: '==', Gte: '>=', Gtr: '>', Lte: '<=',
  Lss: '<', Neq: '!=', And: 'and', Unless: 'unless', Or: 'or',
};

const AGGREGATE_OPS = new Set<string>(['sum', 'avg', 'min', 'max', 'count', 'group', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'count_values']);

/** True for the comparison operators (`==`, `!=`, `>`, `<`, `>=`, `<=`). */
export function isComparison(op: BinaryOp): boolean {
  return op === '==' || op === '!=' || op === '>' || op === '<' || op === '>=' || op === '<=';
}

/** True for the set operators (`and`, `or`, `unless`). */
export function isSetOperator(op: BinaryOp): boolean {
  return op === 'and' || op === 'or' || op === 'unless';
}

/**
 * Parses a PromQL expression into the engine's syntax tree and checks it statically.
 *
 * @throws PromQLError `bad_data` with `position` set and a message `line:col: parse error: …`.
 * @example parseExpr('sum by (job) (rate(http_requests_total[5m]))')
 */
export function parseExpr(input: string): Expr {
  if (input.trim() === '') throw new PromQLError('bad_data', '1:1: parse error: no expression found in input', { position: 0 });
  const tree = parser.parse(input);
  const cursor = tree.cursor();
  let errorAt = -1;
  do {
    if (cursor.type.isError) { errorAt = cursor.from; break; }
  } while (cursor.next());
  if (errorAt >= 0) throw syntaxError(input, errorAt);
  const top = children(tree.topNode)[0];
  if (!top) throw new PromQLError('bad_data', '1:1: parse error: no expression found in input', { position: 0 });
  try {
    const expr = new Builder(input).expr(top);
    typeOf(expr);
    return expr;
  } catch (err) {
    // A chain of thousands of operators nests deeper than the JS stack.
    if (err instanceof RangeError) throw new PromQLError('bad_data', '1:1: parse error: expression is too deeply nested', { position: 0 });
    throw err;
  }
}

/** Where the parse failed, worded like Prometheus's parser. */
function syntaxError(input: string, at: number): PromQLError {
  let message: string;
  const before = input.slice(0, at);
  const fn = /([a-zA-Z_:][a-zA-Z0-9_:]*)\s*$/.exec(before);
  if (at >= input.trimEnd().length) {
    const open = [...before].reduce((n, c) => n + (c === '{' ? 1 : c === '}' ? -1 : 0), 0);
    message = open > 0 ? 'unexpected end of input inside braces' : 'unexpected end of input';
  } else if (fn && input[at] === '(' && !AGGREGATE_OPS.has(fn[1]!) && !FUNCTIONS.has(fn[1]!)) {
    if (fn[1] === 'holt_winters') return positioned(input, at - fn[0].length, 'function "holt_winters" is not supported by Beacon');
    return positioned(input, at - fn[0].length, `unknown function with name "${fn[1]}"`);
  } else {
    const tok = /^(\w+|"[^"]*"?|'[^']*'?|\S)/.exec(input.slice(at))?.[0] ?? input[at];
    message = `unexpected ${JSON.stringify(tok)}`;
  }
  return positioned(input, at, message);
}

function positioned(input: string, at: number, message: string): PromQLError {
  const before = input.slice(0, at);
  const line = before.split('\n').length;
  const col = at - (before.lastIndexOf('\n') + 1) + 1;
  return new PromQLError('bad_data', `${line}:${col}: parse error: ${message}`, { position: at });
}

function children(node: SyntaxNode): SyntaxNode[] {
  const out: SyntaxNode[] = [];
  for (let c = node.firstChild; c; c = c.nextSibling) if (c.name !== 'LineComment') out.push(c);
  return out;
}

const DURATION_RE = /^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$/;
const DURATION_UNITS_MS = [365 * 86400000, 7 * 86400000, 86400000, 3600000, 60000, 1000, 1];

/** Parses a Prometheus duration (`1h30m`, `5m`, `250ms`) into ms; undefined when `text` is not one. */
export function parseDuration(text: string): number | undefined {
  if (text === '') return undefined;
  const match = DURATION_RE.exec(text);
  if (!match) return undefined;
  let ms = 0;
  for (let i = 0; i < DURATION_UNITS_MS.length; i++) {
    const part = match[i + 1];
    if (part !== undefined) ms += Number(part) * DURATION_UNITS_MS[i]!;
  }
  return ms;
}

/** Parses a PromQL number literal (decimal, hex, Inf, NaN, or a duration as seconds). */
function parseNumber(text: string): number | undefined {
  const t = text.replace(/_/g, '');
  const lower = t.toLowerCase();
  if (lower === 'inf' || lower === '+inf') return Infinity;
  if (lower === '-inf') return -Infinity;
  if (lower === 'nan' || lower === '+nan' || lower === '-nan') return NaN;
  // A sign can be part of the literal (lezer reads `-0x10` as one number).
  if (/^[-+]?0x[0-9a-f]+$/i.test(t)) return (t.startsWith('-') ? -1 : 1) * parseInt(t.replace(/^[-+]?0x/i, ''), 16);
  // Prometheus reads an integer literal with Go's strconv.ParseInt(s, 0, 64) first: a leading 0 means octal.
  if (/^[-+]?0[0-7]+$/.test(t)) return (t.startsWith('-') ? -1 : 1) * parseInt(t.replace(/^[-+]?0/, ''), 8);
  const d = parseDuration(t);
  if (d !== undefined && /[a-z]/i.test(t)) return d / 1000;
  const n = Number(t);
  return t !== '' && !Number.isNaN(n) ? n : undefined;
}

/** Resolves a PromQL (Go-style) string literal: double or single quotes with escapes, or raw backticks. */
export function unquote(lit: string): string {
  const q = lit[0];
  const body = lit.slice(1, -1);
  if (q === '`') return body;
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c !== '\\') { out += c; continue; }
    const e = body[++i];
    switch (e) {
      case 'a': out += '\x07'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'v': out += '\v'; break;
      case '\\': case '"': case "'": out += e; break;
      case 'x': out += String.fromCharCode(parseInt(body.slice(i + 1, i + 3), 16)); i += 2; break;
      case 'u': out += String.fromCodePoint(parseInt(body.slice(i + 1, i + 5), 16)); i += 4; break;
      case 'U': out += String.fromCodePoint(parseInt(body.slice(i + 1, i + 9), 16)); i += 8; break;
      default:
        if (e !== undefined && /[0-7]/.test(e)) { out += String.fromCharCode(parseInt(body.slice(i, i + 3), 8)); i += 2; break; }
        throw new Error(`unknown escape sequence \\${e ?? ''}`);
    }
  }
  return out;
}

/** Compiles a matcher's regex fully anchored (`^(?:re)$`, `.` not matching a newline, as Prometheus 2.x does); throws on invalid RE2 syntax. */
export function compileAnchored(re: string): RE2JS {
  return RE2JS.compile(`^(?:${re})$`);
}

/** Turns lezer nodes into {@link Expr} nodes. */
class Builder {
  constructor(private readonly input: string) {}

  private text(n: SyntaxNode): string {
    return this.input.slice(n.from, n.to);
  }

  private fail(n: SyntaxNode | number, message: string): never {
    throw positioned(this.input, typeof n === 'number' ? n : n.from, message);
  }

  private str(n: SyntaxNode): string {
    const text = this.text(n);
    if (text.length < 2 || text[text.length - 1] !== text[0] || (text[0] !== '`' && /(^|[^\\])(\\\\)*\\.$/.test(text))) {
      this.fail(n, 'unterminated quoted string');
    }
    try {
      return unquote(this.text(n));
    } catch (err) {
      return this.fail(n, (err as Error).message);
    }
  }

  expr(n: SyntaxNode): Expr {
    const c = children(n);
    switch (n.name) {
      case 'NumberDurationLiteral': {
        const value = parseNumber(this.text(n).replace(/\s+/g, ''));
        if (value === undefined) this.fail(n, `bad number or duration syntax: ${JSON.stringify(this.text(n))}`);
        return { kind: 'number', value };
      }
      case 'StringLiteral':
        return { kind: 'string', value: this.str(n) };
      case 'ParenExpr':
        return { kind: 'paren', expr: this.expr(c[0]!) };
      case 'UnaryExpr': {
        const op = this.text(c[0]!) === '-' ? '-' : '+';
        const inner = this.expr(c[1]!);
        const t = typeOf(inner);
        if (t !== 'scalar' && t !== 'vector') this.fail(n, `unary expression only allowed on expressions of type scalar or instant vector, got "${t}"`);
        if (inner.kind === 'number') return { kind: 'number', value: op === '-' ? -inner.value : inner.value };
        return { kind: 'unary', op, expr: inner };
      }
      case 'VectorSelector':
        return this.vectorSelector(n, c);
      case 'MatrixSelector': {
        const inner = this.expr(c[0]!);
        this.rangeOnOperator(n, inner);
        if (inner.kind !== 'vectorSelector') this.fail(n, 'ranges only allowed for vector selectors');
        if (inner.offsetMs !== 0 || inner.at) this.fail(n, 'no offset or @ modifiers allowed before range');
        const rangeMs = this.duration(c[1]!);
        if (rangeMs <= 0) this.fail(c[1]!, 'range must be greater than 0');
        return { kind: 'matrixSelector', selector: inner, rangeMs } satisfies MatrixSelector;
      }
      case 'SubqueryExpr': {
        const inner = this.expr(c[0]!);
        this.rangeOnOperator(n, inner);
        const t = typeOf(inner);
        if (t !== 'vector') this.fail(n, `subquery is only allowed on instant vector, got ${TYPE_NAME[t]} instead`);
        const durations = c.filter((x) => x.name === 'DurationExpr');
        const rangeMs = this.duration(durations[0]!);
        if (rangeMs <= 0) this.fail(durations[0]!, 'range must be greater than 0');
        const stepMs = durations[1] ? this.duration(durations[1]) : undefined;
        if (stepMs !== undefined && stepMs <= 0) this.fail(durations[1]!, 'subquery step must be greater than 0');
        return { kind: 'subquery', expr: inner, rangeMs, stepMs, offsetMs: 0, at: undefined } satisfies SubqueryExpr;
      }
      case 'OffsetExpr': {
        const target = this.expr(c[0]!);
        const durNode = c.find((x) => x.name === 'OffsetDurationExpr')!;
        return this.modify(n, target, { offsetMs: this.duration(durNode) });
      }
      case 'StepInvariantExpr': {
        const target = this.expr(c[0]!);
        const last = c[c.length - 1]!;
        let at: AtModifier;
        if (last.name === 'AtModifierPreprocessors') {
          at = { kind: children(last)[0]?.name === 'AtEnd' ? 'end' : 'start' };
        } else {
          const secs = parseNumber(this.text(last).replace(/\s+/g, ''));
          if (secs === undefined || !Number.isFinite(secs)) this.fail(last, `invalid @ timestamp ${JSON.stringify(this.text(last))}`);
          at = { kind: 'time', ms: Math.round(secs * 1000) };
        }
        return this.modify(n, target, { at });
      }
      case 'FunctionCall':
        return this.call(n, c);
      case 'AggregateExpr':
        return this.aggregate(n, c);
      case 'BinaryExpr':
        return this.binary(n, c);
      case 'AnchoredExpr':
      case 'SmoothedExpr':
        return this.fail(n, `the "${n.name === 'AnchoredExpr' ? 'anchored' : 'smoothed'}" modifier is not supported by Beacon`);
      default:
        return this.fail(n, `unexpected ${JSON.stringify(this.text(n))}`);
    }
  }

  /**
   * lezer's grammar reads `a + b[5m]` and `-a[5m:1m]` as a range over the whole operation;
   * Prometheus's binds the range to the nearest operand (`a + (b[5m])`), which makes an operation
   * on a range vector: a type error, whatever that operand is.
   */
  private rangeOnOperator(n: SyntaxNode, inner: Expr): void {
    if (inner.kind === 'binary') this.fail(n, 'binary expression must contain only scalar and instant vector types');
    if (inner.kind === 'unary') this.fail(n, 'unary expression only allowed on expressions of type scalar or instant vector, got "range vector"');
  }

  private modify(n: SyntaxNode, target: Expr, mod: { offsetMs?: number; at?: AtModifier }): Expr {
    // lezer's grammar reads `a - b offset 1m` and `-a @ 5` as a modifier of the whole operation;
    // Prometheus's binds `offset` and `@` to the nearest operand: `a - (b offset 1m)`, `-(a @ 5)`.
    if (target.kind === 'binary') {
      this.modify(n, target.rhs, mod);
      return target;
    }
    if (target.kind === 'unary') {
      this.modify(n, target.expr, mod);
      return target;
    }
    const apply = (x: VectorSelector | SubqueryExpr): void => {
      if (mod.offsetMs !== undefined) {
        if (x.offsetMs !== 0) this.fail(n, 'offset may not be set multiple times');
        x.offsetMs = mod.offsetMs;
      }
      if (mod.at) {
        if (x.at) this.fail(n, '@ <timestamp> may not be set multiple times');
        x.at = mod.at;
      }
    };
    if (target.kind === 'vectorSelector' || target.kind === 'subquery') apply(target);
    else if (target.kind === 'matrixSelector') apply(target.selector);
    else {
      const what = mod.at ? '@ modifier' : 'offset modifier';
      this.fail(n, `${what} must be preceded by an instant vector selector or range vector selector or a subquery`);
    }
    return target;
  }

  /** Evaluates a duration expression (a literal, or arithmetic on literals) to ms. */
  private duration(n: SyntaxNode): number {
    const c = children(n);
    if (n.name === 'NumberDurationLiteralInDurationContext') {
      const t = this.text(n).replace(/_/g, '');
      const d = parseDuration(t);
      if (d !== undefined) return d;
      const secs = parseNumber(t);
      if (secs === undefined || !Number.isFinite(secs)) this.fail(n, `bad duration syntax: ${JSON.stringify(this.text(n))}`);
      return Math.round(secs * 1000);
    }
    if (n.name === 'DurationExpr' || n.name === 'OffsetDurationExpr') {
      if (c.length === 1) return this.duration(c[0]!);
      if (c.length === 2 && c[0]!.name === 'UnaryOp') {
        const d = this.duration(c[1]!);
        return this.text(c[0]!) === '-' ? -d : d;
      }
      if (c.length === 3 && c[0]!.name === 'DurationExpr') {
        const a = this.duration(c[0]!) / 1000;
        const b = this.duration(c[2]!) / 1000;
        const op = c[1]!.name;
        const r = op === 'Add' ? a + b : op === 'Sub' ? a - b : op === 'Mul' ? a * b : op === 'Div' ? a / b : op === 'Mod' ? a % b : a ** b;
        if (!Number.isFinite(r)) this.fail(n, 'duration expression is not a finite number');
        return Math.round(r * 1000);
      }
    }
    if (n.name === 'DurationStep' || n.name === 'DurationRange' || n.name === 'DurationMinOf' || n.name === 'DurationMaxOf') {
      this.fail(n, `the duration function ${JSON.stringify(this.text(n))} is not supported by Beacon`);
    }
    // `(5m)` and `step()` forms: the inline durationPrimary leaves its tokens as children.
    const inner = c.find((x) => x.name === 'DurationExpr' || x.name === 'NumberDurationLiteralInDurationContext');
    if (inner && c.every((x) => x === inner)) return this.duration(inner);
    const fn = c.find((x) => x.name.startsWith('Duration') && x.name !== 'DurationExpr');
    if (fn) this.fail(fn, `the duration function ${JSON.stringify(this.text(fn))} is not supported by Beacon`);
    if (inner) return this.duration(inner);
    return this.fail(n, `bad duration ${JSON.stringify(this.text(n))}`);
  }

  private vectorSelector(n: SyntaxNode, c: SyntaxNode[]): VectorSelector {
    let name: string | undefined;
    const matchers: Matcher[] = [];
    for (const x of c) {
      if (x.name === 'Identifier') {
        name = this.text(x);
      } else if (x.name === 'LabelMatchers') {
        for (const lm of children(x)) {
          if (lm.name === 'QuotedLabelName') {
            if (name !== undefined) this.fail(lm, 'metric name must not be set twice');
            name = this.str(children(lm)[0]!);
            continue;
          }
          const [ln, op, val] = children(lm);
          const label = ln!.name === 'QuotedLabelName' ? this.str(children(ln!)[0]!) : this.text(ln!);
          const matchOp = this.text(op!) as MatchOp;
          const value = this.str(val!);
          if (matchOp === '=~' || matchOp === '!~') {
            try {
              compileAnchored(value);
            } catch (err) {
              this.fail(val!, `invalid regular expression ${JSON.stringify(value)}: ${(err as Error).message}`);
            }
          }
          matchers.push({ name: label, op: matchOp, value });
        }
      }
    }
    if (name !== undefined) {
      if (matchers.some((x) => x.name === '__name__')) this.fail(n, `metric name must not be set twice: ${JSON.stringify(name)}`);
      matchers.unshift({ name: '__name__', op: '=', value: name });
    }
    if (!matchers.some((x) => !matchesEmpty(x))) this.fail(n, 'vector selector must contain at least one non-empty matcher');
    return { kind: 'vectorSelector', name, matchers, offsetMs: 0, at: undefined };
  }

  private call(n: SyntaxNode, c: SyntaxNode[]): Call {
    const fname = this.text(c[0]!);
    const args = children(c[1]!).map((a) => this.expr(a));
    const fsig = FUNCTIONS.get(fname);
    if (!fsig) this.fail(n, `function "${fname}" is not supported by Beacon`);
    const min = fsig.optional === -1 ? fsig.args.length - 1 : fsig.args.length - fsig.optional;
    const max = fsig.optional === -1 ? Infinity : fsig.args.length;
    if (args.length < min || args.length > max) {
      const expected = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `at most ${max}`;
      this.fail(n, `expected ${expected} argument(s) in call to "${fname}", got ${args.length}`);
    }
    args.forEach((a, i) => {
      const want = fsig.args[Math.min(i, fsig.args.length - 1)]!;
      const got = typeOf(a);
      if (got !== want) this.fail(n, `expected type ${TYPE_NAME[want]} in call to function "${fname}", got ${TYPE_NAME[got]}`);
    });
    return { kind: 'call', func: fname, args };
  }

  private aggregate(n: SyntaxNode, c: SyntaxNode[]): AggregateExpr {
    const op = this.text(c[0]!).toLowerCase();
    if (!AGGREGATE_OPS.has(op)) this.fail(c[0]!, `aggregation "${this.text(c[0]!)}" is not supported by Beacon`);
    const mod = c.find((x) => x.name === 'AggregateModifier');
    let grouping: string[] = [];
    let without = false;
    if (mod) {
      const mc = children(mod);
      without = mc[0]!.name === 'Without';
      grouping = this.groupingLabels(mc[1]!);
    }
    const body = c.find((x) => x.name === 'FunctionCallBody')!;
    const args = children(body).map((a) => this.expr(a));
    const hasParam = op === 'topk' || op === 'bottomk' || op === 'quantile' || op === 'count_values';
    const want = hasParam ? 2 : 1;
    if (args.length !== want) this.fail(n, `wrong number of arguments for aggregate expression provided, expected ${want}, got ${args.length}`);
    const expr = args[want - 1]!;
    const et = typeOf(expr);
    if (et !== 'vector') this.fail(n, `expected type instant vector in aggregation expression, got ${TYPE_NAME[et]}`);
    const param = hasParam ? args[0] : undefined;
    if (param) {
      const pt = typeOf(param);
      const pw = op === 'count_values' ? 'string' : 'scalar';
      if (pt !== pw) this.fail(n, `expected type ${TYPE_NAME[pw]} in aggregation parameter, got ${TYPE_NAME[pt]}`);
    }
    return { kind: 'aggregate', op: op as AggregateOp, expr, param, grouping, without };
  }

  private groupingLabels(n: SyntaxNode): string[] {
    return children(n).map((x) => (x.name === 'QuotedLabelName' ? this.str(children(x)[0]!) : this.text(x)));
  }

  private binary(n: SyntaxNode, c: SyntaxNode[]): Expr {
    const first = c[0]!;
    if (c[1]?.name === 'Pow' && first.name === 'NumberDurationLiteral' && /^[-+]/.test(this.text(first))) {
      // lezer reads `-2 ^ 2` as `(-2) ^ 2`; Prometheus's parser gives unary minus a lower precedence than `^`: `-(2 ^ 2)`.
      const literal = this.expr(first) as { kind: 'number'; value: number };
      const pow = this.binaryOf(n, c, { kind: 'number', value: Math.abs(literal.value) });
      return this.text(first).startsWith('-') ? { kind: 'unary', op: '-', expr: pow } : pow;
    }
    return this.binaryOf(n, c, this.expr(first));
  }

  private binaryOf(n: SyntaxNode, c: SyntaxNode[], lhs: Expr): BinaryExpr {
    const rhs = this.expr(c[c.length - 1]!);
    const opNode = c[1]!;
    const op = BINARY_OPS[opNode.name];
    if (!op) this.fail(opNode, `operator ${JSON.stringify(this.text(opNode))} is not supported by Beacon`);
    const returnBool = c.some((x) => x.name === 'BoolModifier');
    const fill = c.find((x) => x.name === 'FillModifier');
    if (fill) this.fail(fill, 'fill modifiers are not supported by Beacon');
    const clause = c.find((x) => x.name === 'MatchingModifierClause');
    const lt = typeOf(lhs);
    const rt = typeOf(rhs);
    if ((lt !== 'scalar' && lt !== 'vector') || (rt !== 'scalar' && rt !== 'vector')) {
      this.fail(n, 'binary expression must contain only scalar and instant vector types');
    }
    if (returnBool && !isComparison(op)) this.fail(n, 'bool modifier can only be used on comparison operators');
    if (isComparison(op) && !returnBool && lt === 'scalar' && rt === 'scalar') this.fail(n, 'comparisons between scalars must use BOOL modifier');
    if (isSetOperator(op) && (lt !== 'vector' || rt !== 'vector')) {
      this.fail(n, `set operator "${op}" not allowed in binary scalar expression`);
    }
    let matching: VectorMatching | undefined;
    if (clause) {
      if (lt !== 'vector' || rt !== 'vector') this.fail(clause, 'vector matching only allowed between instant vectors');
      const cc = children(clause);
      matching = { card: 'one-to-one', on: cc[0]!.name === 'On', labels: this.groupingLabels(cc[1]!), include: [] };
      const group = cc[2];
      if (group) {
        if (isSetOperator(op)) this.fail(group, `no grouping allowed for "${op}" operation`);
        matching.card = group.name === 'GroupLeft' ? 'many-to-one' : 'one-to-many';
        if (cc[3]) matching.include = this.groupingLabels(cc[3]);
        for (const l of matching.include) {
          if (matching.on && matching.labels.includes(l)) this.fail(group, `label "${l}" must not occur in ON and GROUP clause at once`);
        }
      }
    } else if (lt === 'vector' && rt === 'vector') {
      matching = { card: 'one-to-one', on: false, labels: [], include: [] };
    }
    if (matching && isSetOperator(op)) matching.card = 'many-to-many';
    return { kind: 'binary', op, lhs, rhs, returnBool, matching };
  }
}

/** True when the matcher matches a series that lacks the label (its value is the empty string). */
export function matchesEmpty(mt: Matcher): boolean {
  switch (mt.op) {
    case '=': return mt.value === '';
    case '!=': return mt.value !== '';
    case '=~': return compileAnchored(mt.value).matches('');
    case '!~': return !compileAnchored(mt.value).matches('');
  }
}

/**
 * The value type an expression evaluates to (Prometheus's `Type()`).
 *
 * @example typeOf(parseExpr('rate(x[5m])')) === 'vector'
 */
export function typeOf(e: Expr): ValueType {
  switch (e.kind) {
    case 'number': return 'scalar';
    case 'string': return 'string';
    case 'vectorSelector': return 'vector';
    case 'matrixSelector': return 'matrix';
    case 'subquery': return 'matrix';
    case 'call': return FUNCTIONS.get(e.func)?.ret ?? 'vector';
    case 'aggregate': return 'vector';
    case 'binary': return typeOf(e.lhs) === 'scalar' && typeOf(e.rhs) === 'scalar' ? 'scalar' : 'vector';
    case 'unary': return typeOf(e.expr);
    case 'paren': return typeOf(e.expr);
  }
}
