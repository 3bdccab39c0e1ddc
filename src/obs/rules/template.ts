/**
 * A small renderer for the subset of Go's text/template that Prometheus rule labels and
 * annotations use: `{{ $labels.x }}`, `{{ $value }}`, `{{ $externalLabels.x }}`, pipelines with
 * `humanize*`, `printf`, `toUpper`…, `if/else if/else/end`, `range`, `with` and variables.
 */
import { TemplateError } from './errors.js';
import { formatFloat, goSprintf, humanize, humanize1024, humanizeDuration, humanizePercentage, toFloat } from './format.js';

/** The data a rule template sees (Prometheus `template.AlertTemplateData`). */
export interface TemplateData {
  /** The alert's labels: the series' labels (with `__name__`) before the rule's labels are applied. */
  labels: Record<string, string>;
  /** The sample value of the alert. */
  value: number;
  externalLabels?: Record<string, string>;
  externalURL?: string;
}

type Value = unknown;

interface Pipe { decls: string[]; cmds: Arg[][] }
type Arg =
  | { k: 'lit'; v: Value }
  | { k: 'var'; name: string; fields: string[] }
  | { k: 'dot'; fields: string[] }
  | { k: 'fn'; name: string; at: number; cmd: string }
  | { k: 'pipe'; p: Pipe; fields: string[] };
type Node =
  | { k: 'text'; s: string }
  | { k: 'out'; p: Pipe }
  | { k: 'if' | 'with'; p: Pipe; then: Node[]; else: Node[] }
  | { k: 'range'; p: Pipe; body: Node[]; else: Node[] };

type Fn = (...args: Value[]) => Value;

/** Length of the variable definitions Prometheus puts before every rule template, which shift Go's columns on line 1. */
const DEFS_LENGTH = '{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}'.length;

function num(v: Value): number {
  return toFloat(v);
}
function truth(v: Value): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}
function cmp(a: Value, b: Value): number {
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  throw new Error('incompatible types for comparison');
}

/** The functions Prometheus gives rule templates (those needing a query engine are refused at render time). */
const FUNCS: Record<string, Fn> = {
  humanize: (v) => humanize(num(v)),
  humanize1024: (v) => humanize1024(num(v)),
  humanizeDuration: (v) => humanizeDuration(num(v)),
  humanizePercentage: (v) => humanizePercentage(num(v)),
  humanizeTimestamp: (v) => new Date(num(v) * 1000).toISOString().replace('T', ' ').replace('Z', ' +0000 UTC'),
  printf: (f, ...a) => goSprintf(String(f), a),
  print: (...a) => a.map(show).join(''),
  println: (...a) => `${a.map(show).join(' ')}\n`,
  toUpper: (s) => String(s).toUpperCase(),
  toLower: (s) => String(s).toLowerCase(),
  title: (s) => String(s).replace(/(^|[^\p{L}\p{N}_'])(\p{L})/gu, (_m, p: string, c: string) => p + c.toUpperCase()),
  match: (re, s) => new RegExp(`^(?:${String(re)})`).test(String(s)) || new RegExp(String(re)).test(String(s)),
  reReplaceAll: (re, repl, s) => String(s).replace(new RegExp(String(re), 'g'), String(repl).replace(/\$\{?(\w+)\}?/g, '$$$1')),
  stripPort: (s) => String(s).replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1'),
  stripDomain: (s) => String(s).replace(/\..*?(?=(:\d+)?$)/, ''),
  safeHtml: (s) => String(s),
  html: (s) => String(s).replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`),
  urlquery: (s) => encodeURIComponent(String(s)),
  len: (v) => (typeof v === 'string' || Array.isArray(v) ? v.length : Object.keys(v as object).length),
  index: (m, ...keys) => keys.reduce((o: Value, k) => (o as Record<string, Value>)[String(k)] ?? '', m),
  not: (v) => !truth(v),
  and: (...a) => a.find((v) => !truth(v)) ?? a[a.length - 1],
  or: (...a) => a.find((v) => truth(v)) ?? a[a.length - 1],
  eq: (a, ...b) => b.some((x) => x === a),
  ne: (a, b) => a !== b,
  lt: (a, b) => cmp(a, b) < 0,
  le: (a, b) => cmp(a, b) <= 0,
  gt: (a, b) => cmp(a, b) > 0,
  ge: (a, b) => cmp(a, b) >= 0,
  args: (...a) => Object.fromEntries(a.map((v, i) => [`arg${i}`, v])),
  externalURL: () => '',
  pathPrefix: () => '',
  parseDuration: (s) => {
    throw new Error(`parseDuration is not supported by Beacon (${String(s)})`);
  },
  query: () => {
    throw new Error('query is not supported in Beacon rule templates yet');
  },
  first: () => {
    throw new Error('first is not supported in Beacon rule templates yet');
  },
};

/** How a value prints in Go's `{{ }}` (fmt `%v`). */
function show(v: Value): string {
  if (v === undefined || v === null) return '<no value>';
  if (typeof v === 'number') return formatFloat(v, -1);
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(show).join(' ')}]`;
  const o = v as Record<string, Value>;
  return `map[${Object.keys(o).sort().map((k) => `${k}:${show(o[k])}`).join(' ')}]`;
}

class Parser {
  private pos = 0;
  private line = 1;
  constructor(private readonly src: string, private readonly name: string) {}

  fail(msg: string): never {
    throw new TemplateError(`template: ${this.name}:${this.line}: ${msg}`);
  }

  /** Parses until `{{end}}`/`{{else}}` (returned as the terminator) or the end of the text. */
  list(inBlock: boolean): { nodes: Node[]; term: string } {
    const nodes: Node[] = [];
    while (this.pos < this.src.length) {
      const open = this.src.indexOf('{{', this.pos);
      let text = this.src.slice(this.pos, open < 0 ? undefined : open);
      if (open < 0) {
        nodes.push({ k: 'text', s: text });
        this.pos = this.src.length;
        break;
      }
      const trimLeft = this.src.startsWith('{{- ', open) || this.src.startsWith('{{-\t', open) || this.src.startsWith('{{-\n', open);
      if (trimLeft) text = text.replace(/\s+$/, '');
      if (text) nodes.push({ k: 'text', s: text });
      this.line += (this.src.slice(this.pos, open).match(/\n/g) ?? []).length;
      const start = open + (trimLeft ? 3 : 2);
      const close = this.findClose(start);
      if (close < 0) this.fail('unclosed action');
      let body = this.src.slice(start, close);
      let end = close + 2;
      if (/\s-$/.test(body)) {
        body = body.slice(0, -1);
        while (end < this.src.length && /\s/.test(this.src[end] ?? '')) end++;
      }
      this.line += (this.src.slice(start, close).match(/\n/g) ?? []).length;
      this.pos = end;
      this.bodyStart = start;
      const t = body.trim();
      this.bodyStart = start + (body.length - body.trimStart().length);
      if (t.startsWith('/*')) {
        if (!t.endsWith('*/')) this.fail('unclosed comment');
        continue;
      }
      const kw = /^(if|else|end|range|with|define|template|block)\b/.exec(t)?.[1];
      if (kw === 'end' || kw === 'else') {
        if (!inBlock) this.fail(`unexpected {{${kw}}}`);
        return { nodes, term: t };
      }
      if (kw === 'define' || kw === 'template' || kw === 'block') this.fail(`{{${kw}}} is not supported by Beacon`);
      if (kw === 'if' || kw === 'with' || kw === 'range') {
        this.bodyStart += kw.length;
        nodes.push(this.block(kw, t.slice(kw.length)));
        continue;
      }
      nodes.push({ k: 'out', p: this.pipe(t) });
    }
    if (inBlock) this.fail('unexpected EOF');
    return { nodes, term: '' };
  }

  private findClose(from: number): number {
    let i = from;
    while (i < this.src.length) {
      const c = this.src[i];
      if (c === '"' || c === '`') {
        const q = c;
        i++;
        while (i < this.src.length && this.src[i] !== q) i += this.src[i] === '\\' && q === '"' ? 2 : 1;
        if (i >= this.src.length) this.fail('unterminated quoted string');
      } else if (this.src.startsWith('}}', i)) return i;
      i++;
    }
    return -1;
  }

  private block(kw: 'if' | 'with' | 'range', rest: string): Node {
    const p = this.pipe(rest);
    const a = this.list(true);
    let elseNodes: Node[] = [];
    if (a.term.startsWith('else')) {
      const more = a.term.slice(4).trim();
      if (more.startsWith('if') && kw === 'if') {
        this.bodyStart = -1;
        elseNodes = [this.block('if', more.slice(2))];
        return kw === 'if' ? { k: 'if', p, then: a.nodes, else: elseNodes } : this.fail('unexpected else if');
      }
      if (more) this.fail(`unexpected "${more}" in else`);
      const b = this.list(true);
      if (b.term !== 'end') this.fail('expected end; found else');
      elseNodes = b.nodes;
    } else if (a.term !== 'end') this.fail(`unexpected ${a.term}`);
    return kw === 'range' ? { k: 'range', p, body: a.nodes, else: elseNodes } : { k: kw, p, then: a.nodes, else: elseNodes };
  }

  private pipe(text: string, base = -1): Pipe {
    const toks = this.lex(text, base < 0 ? Math.max(this.bodyStart, 0) : base);
    let i = 0;
    const decls: string[] = [];
    const declEnd = toks.findIndex((t) => t === ':=' || t === '=');
    if (declEnd > 0) {
      for (const t of toks.slice(0, declEnd)) if (t !== ',') {
        if (!t.startsWith('$')) this.fail(`unexpected "${t}" in declaration`);
        decls.push(t.slice(1));
      }
      i = declEnd + 1;
    }
    const parsed = this.parseCmds(toks, i, false);
    return { decls, cmds: parsed.cmds };
  }

  private parseCmds(toks: string[], start: number, inParen: boolean): { cmds: Arg[][]; next: number } {
    const cmds: Arg[][] = [[]];
    let i = start;
    let cmdStart = start;
    for (; i < toks.length; i++) {
      const t = toks[i] as string;
      const cur = cmds[cmds.length - 1] as Arg[];
      if (t === ')') {
        if (!inParen) this.fail('unexpected right paren');
        break;
      }
      if (t === '|') {
        if (cur.length === 0) this.fail('missing command');
        cmds.push([]);
        cmdStart = i + 1;
      } else if (t === '(') {
        const sub = this.parseCmds(toks, i + 1, true);
        i = sub.next;
        const fields: string[] = [];
        while (toks[i + 1]?.startsWith('.') && toks[i + 1] !== '.') fields.push(...(toks[++i] as string).slice(1).split('.'));
        cur.push({ k: 'pipe', p: { decls: [], cmds: sub.cmds }, fields });
      } else {
        const a = this.arg(t);
        if (a.k === 'fn') {
          let j = cmdStart;
          const words: string[] = [];
          while (j < toks.length && toks[j] !== '|' && toks[j] !== ')') words.push(toks[j++] as string);
          a.at = this.offsets[cmdStart] ?? 0;
          a.cmd = words.join(' ');
        }
        cur.push(a);
      }
    }
    if (inParen && toks[i] !== ')') this.fail('unclosed left paren');
    if ((cmds[cmds.length - 1] as Arg[]).length === 0) this.fail('missing value for command');
    return { cmds, next: i };
  }

  private arg(t: string): Arg {
    if (t.startsWith('"')) {
      try {
        return { k: 'lit', v: JSON.parse(t) as string };
      } catch {
        this.fail(`bad string ${t}`);
      }
    }
    if (t.startsWith('`')) return { k: 'lit', v: t.slice(1, -1) };
    if (/^[-+]?(\d|\.\d)/.test(t)) {
      const n = Number(t);
      if (Number.isNaN(n)) this.fail(`bad number syntax: "${t}"`);
      return { k: 'lit', v: n };
    }
    if (t === 'true' || t === 'false') return { k: 'lit', v: t === 'true' };
    if (t === 'nil') return { k: 'lit', v: null };
    if (t.startsWith('$')) {
      const [name, ...fields] = t.slice(1).split('.');
      return { k: 'var', name: name ?? '', fields };
    }
    if (t === '.') return { k: 'dot', fields: [] };
    if (t.startsWith('.')) return { k: 'dot', fields: t.slice(1).split('.') };
    if (!(t in FUNCS)) this.fail(`function "${t}" not defined`);
    return { k: 'fn', name: t, at: 0, cmd: t };
  }

  /** Offsets in the source of the tokens of the last {@link Parser.lex}. */
  private offsets: number[] = [];
  private bodyStart = 0;

  private lex(text: string, base: number): string[] {
    const out: string[] = [];
    this.offsets = [];
    const re = /\s+|("(?:[^"\\]|\\.)*"|`[^`]*`|:=|=|\||\(|\)|,|[^\s|(),"`]+)/gy;
    let m: RegExpExecArray | null;
    let last = 0;
    while ((m = re.exec(text)) !== null) {
      if (m[0] === '') break;
      last = re.lastIndex;
      if (m[1] !== undefined) {
        out.push(m[1]);
        this.offsets.push(base + m.index);
      }
    }
    if (last < text.length) this.fail(`unexpected "${text.slice(last, last + 1)}" in command`);
    return out;
  }
}

class Exec {
  private readonly scopes: Map<string, Value>[];
  constructor(vars: Record<string, Value>, private readonly name: string, private readonly src: string) {
    this.scopes = [new Map(Object.entries(vars))];
  }

  run(nodes: Node[], dot: Value, out: string[]): void {
    for (const n of nodes) {
      switch (n.k) {
        case 'text':
          out.push(n.s);
          break;
        case 'out': {
          const v = this.pipe(n.p, dot);
          if (n.p.decls.length === 0) out.push(show(v));
          break;
        }
        case 'if':
        case 'with': {
          this.scopes.push(new Map());
          const v = this.pipe(n.p, dot);
          if (truth(v)) this.run(n.then, n.k === 'with' ? v : dot, out);
          else this.run(n.else, dot, out);
          this.scopes.pop();
          break;
        }
        case 'range': {
          this.scopes.push(new Map());
          const decls = n.p.decls;
          const v = this.pipe({ decls: [], cmds: n.p.cmds }, dot);
          let entries: [Value, Value][];
          if (Array.isArray(v)) entries = v.map((x, i) => [i, x]);
          else if (v && typeof v === 'object') entries = Object.keys(v).sort().map((k) => [k, (v as Record<string, Value>)[k]]);
          else if (typeof v === 'number' && Number.isInteger(v)) entries = Array.from({ length: v }, (_x, i) => [i, i]);
          else if (v === undefined || v === null) entries = [];
          else throw new TemplateError(`template: ${this.name}: range can't iterate over ${show(v)}`);
          for (const [k, x] of entries) {
            const scope = this.scopes[this.scopes.length - 1] as Map<string, Value>;
            if (decls.length === 1) scope.set(decls[0] as string, x);
            if (decls.length === 2) {
              scope.set(decls[0] as string, k);
              scope.set(decls[1] as string, x);
            }
            this.run(n.body, x, out);
          }
          if (entries.length === 0) this.run(n.else, dot, out);
          this.scopes.pop();
          break;
        }
      }
    }
  }

  /** `template: NAME:LINE:COL:` as Go reports it; Prometheus's variable definitions (112 bytes) precede line 1. */
  private where(offset: number): string {
    const before = this.src.slice(0, offset);
    const line = (before.match(/\n/g) ?? []).length + 1;
    const col = offset - (before.lastIndexOf('\n') + 1) + (line === 1 ? DEFS_LENGTH : 0);
    return `template: ${this.name}:${line}:${col}:`;
  }

  private lookup(name: string): Value {
    for (let i = this.scopes.length - 1; i >= 0; i--) if (this.scopes[i]?.has(name)) return this.scopes[i]?.get(name);
    throw new TemplateError(`template: ${this.name}: undefined variable: $${name}`);
  }

  private field(v: Value, fields: string[]): Value {
    let cur = v;
    for (const f of fields) {
      if (cur === null || cur === undefined || typeof cur !== 'object') throw new TemplateError(`template: ${this.name}: can't evaluate field ${f} in type ${typeof cur}`);
      cur = (cur as Record<string, Value>)[f];
    }
    return cur;
  }

  private pipe(p: Pipe, dot: Value): Value {
    let prev: Value = undefined;
    p.cmds.forEach((cmd, ci) => {
      const [head, ...rest] = cmd as [Arg, ...Arg[]];
      const args = rest.map((a) => this.arg(a, dot));
      if (ci > 0) args.push(prev);
      if (head.k === 'fn') {
        try {
          prev = (FUNCS[head.name] as Fn)(...args);
        } catch (err) {
          if (err instanceof TemplateError) throw err;
          throw new TemplateError(`${this.where(head.at)} executing "${this.name}" at <${head.cmd}>: error calling ${head.name}: ${(err as Error).message}`);
        }
      } else {
        if (args.length > 0) throw new TemplateError(`template: ${this.name}: can't give argument to non-function`);
        prev = this.arg(head, dot);
      }
    });
    const scope = this.scopes[this.scopes.length - 1] as Map<string, Value>;
    for (const d of p.decls) {
      // `=` assigns an outer variable; `:=` declares one here. Both are found by lookup later.
      scope.set(d, prev);
    }
    return prev;
  }

  private arg(a: Arg, dot: Value): Value {
    switch (a.k) {
      case 'lit':
        return a.v;
      case 'var':
        return this.field(this.lookup(a.name), a.fields);
      case 'dot':
        return this.field(dot, a.fields);
      case 'pipe':
        return this.field(this.pipe(a.p, dot), a.fields);
      case 'fn':
        return (FUNCS[a.name] as Fn)();
    }
  }
}

/**
 * Checks that a template parses (unknown functions, unclosed actions, bad blocks), as
 * `promtool check rules` does.
 * @throws TemplateError `template: NAME:LINE: reason`.
 */
export function checkTemplate(text: string, name: string): void {
  new Parser(text, name).list(false);
}

/**
 * Renders a rule template with Prometheus's variables `$labels`, `$value`, `$externalLabels`,
 * `$externalURL` (and `.Labels`, `.Value`…).
 * @throws TemplateError when the text does not parse or a function fails; Prometheus then uses
 * the error text (`<error expanding template: …>`) in place of the value — see {@link expandTemplate}.
 */
export function renderTemplate(text: string, name: string, data: TemplateData): string {
  if (!text.includes('{{')) return text;
  const nodes = new Parser(text, name).list(false).nodes;
  const dot = { Labels: data.labels, Value: data.value, ExternalLabels: data.externalLabels ?? {}, ExternalURL: data.externalURL ?? '' };
  const exec = new Exec({ labels: dot.Labels, value: dot.Value, externalLabels: dot.ExternalLabels, externalURL: dot.ExternalURL, '': dot }, name, text);
  const out: string[] = [];
  exec.run(nodes, dot, out);
  return out.join('');
}

/**
 * Renders like Prometheus's rule evaluation: a template that fails leaves the error text in the
 * result (`<error expanding template: …>`) so that the alert still goes out with the error shown.
 */
export function expandTemplate(text: string, name: string, data: TemplateData): string {
  try {
    return renderTemplate(text, name, data);
  } catch (err) {
    return `<error expanding template: error executing template ${name}: ${(err as Error).message}>`;
  }
}
