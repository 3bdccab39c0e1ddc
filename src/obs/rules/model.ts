/**
 * The Prometheus rule-file model (`groups:` of alerting and recording rules) and its loader,
 * which validates as `promtool check rules` (Prometheus 2.42 `rulefmt`) does.
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Node as YamlNode, Pair, YAMLMap } from 'yaml';
import { parseExpr, PromQLError } from '../promql/index.js';
import type { Expr } from '../promql/index.js';
import { RuleFileError } from './errors.js';
import { checkTemplate } from './template.js';

/** An alerting rule: fires per label set when `expr` returns samples for at least `forMs`. */
export interface AlertingRule {
  kind: 'alert';
  /** The alert name (label `alertname`). */
  name: string;
  expr: string;
  parsed: Expr;
  /** How long `expr` must keep returning a label set before the alert fires, ms (0: at once). */
  forMs: number;
  /** How long a firing alert keeps firing after `expr` stops returning it, ms (Prometheus 2.42+). */
  keepFiringForMs: number;
  /** Labels added to the alert; values are templates. */
  labels: Record<string, string>;
  /** Annotations (`summary`, `description`…); values are templates. */
  annotations: Record<string, string>;
}

/** A recording rule: stores `expr`'s result as the series named `name`. */
export interface RecordingRule {
  kind: 'record';
  /** The metric name of the recorded series. */
  name: string;
  expr: string;
  parsed: Expr;
  /** Labels set on every recorded series (an empty value removes the label). */
  labels: Record<string, string>;
}

/** An alerting or recording rule. */
export type Rule = AlertingRule | RecordingRule;

/** A group: its rules are evaluated in order, together, every `intervalMs`. */
export interface RuleGroup {
  name: string;
  /** Evaluation interval, ms; undefined means the global one (Prometheus's default 1 min). */
  intervalMs: number | undefined;
  /** Most alerts (or series of a recording rule) one rule may produce; 0 = no limit. */
  limit: number;
  rules: Rule[];
}

const GROUPS_FIELDS = new Set(['groups']);
const GROUP_FIELDS = new Set(['name', 'interval', 'limit', 'rules', 'query_offset']);
const RULE_FIELDS = new Set(['record', 'alert', 'expr', 'for', 'keep_firing_for', 'labels', 'annotations']);
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const DURATION = /^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$/;
const UNIT_MS = [365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000, 1];

/**
 * Parses a Prometheus duration (`1h30m`, `90s`, `0`), as `model.ParseDuration`.
 * @throws RuleFileError `not a valid duration string: "…"`.
 */
export function parseDuration(text: string): number {
  const m = text === '0' ? [] : DURATION.exec(text);
  if (!m || text === '') throw new RuleFileError([`not a valid duration string: ${JSON.stringify(text)}`]);
  return UNIT_MS.reduce((sum, unit, i) => sum + (m[i + 1] ? Number(m[i + 1]) * unit : 0), 0);
}

/** Formats ms as Prometheus prints a duration (`1h30m`, `5m`, `0s`). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let out = ms < 0 ? '-' : '';
  let rest = Math.abs(ms);
  const units: [string, number][] = [['y', UNIT_MS[0] as number], ['w', UNIT_MS[1] as number], ['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]];
  for (const [u, n] of units) {
    if (rest >= n) {
      out += `${Math.floor(rest / n)}${u}`;
      rest %= n;
    }
  }
  return out;
}

/** What {@link loadRuleFile} returns: the groups, and the reasons the file is invalid (empty when valid). */
export interface LoadedRuleFile {
  groups: RuleGroup[];
  /** Each reason as `promtool check rules` prints it, prefixed by the file name. */
  errors: string[];
}

/**
 * Loads and validates a rule file. Structural problems (YAML syntax, unknown fields, wrong types,
 * bad durations) stop at the first, as in promtool; otherwise every rule's problems are listed
 * (empty group name, repeated group, both or neither of `alert`/`record`, missing or invalid
 * `expr`, `for`/`annotations` on a recording rule, invalid names, templates that do not parse).
 * Never throws for bad content.
 */
export function loadRuleFile(text: string, file: string): LoadedRuleFile {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const pos = (n: YamlNode | Pair | null | undefined): { line: number; col: number } => {
    const off = n && 'range' in n && n.range ? n.range[0] : n && 'key' in n && isScalar(n.key) && n.key.range ? n.key.range[0] : 0;
    return lc.linePos(off);
  };
  const fail = (msg: string): LoadedRuleFile => ({ groups: [], errors: [`${file}: ${msg}`] });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    return fail(`yaml: line ${e?.linePos?.[0].line ?? 1}: ${e?.message.split('\n')[0] ?? 'syntax error'}`);
  }
  const root = doc.contents;
  if (root === null || (isScalar(root) && (root.value === null || root.value === ''))) return { groups: [], errors: [] };
  if (!isMap(root)) return fail(`yaml: unmarshal errors:\n  line ${pos(root).line}: cannot unmarshal into rulefmt.RuleGroups`);
  try {
    const unknown = (m: YAMLMap, allowed: Set<string>, type: string): void => {
      for (const p of m.items) {
        const k = isScalar(p.key) ? String(p.key.value) : String(p.key);
        if (!allowed.has(k)) throw new RuleFileError([`yaml: unmarshal errors:\n  line ${pos(p).line}: field ${k} not found in type ${type}`]);
      }
    };
    const str = (n: unknown, what: string): string => {
      if (n === undefined || n === null) return '';
      if (isScalar(n) && (typeof n.value === 'string' || typeof n.value === 'number' || typeof n.value === 'boolean')) return String(n.value);
      if (isScalar(n) && n.value === null) return '';
      throw new RuleFileError([`yaml: unmarshal errors:\n  line ${pos(n as YamlNode).line}: cannot unmarshal ${what} into string`]);
    };
    const strMap = (n: unknown, what: string): Record<string, string> => {
      const out: Record<string, string> = {};
      if (n === undefined || n === null || (isScalar(n) && n.value === null)) return out;
      if (!isMap(n)) throw new RuleFileError([`yaml: unmarshal errors:\n  line ${pos(n as YamlNode).line}: cannot unmarshal ${what} into map[string]string`]);
      for (const p of n.items) out[str(p.key, 'key')] = str(p.value, 'value');
      return out;
    };
    unknown(root, GROUPS_FIELDS, 'rulefmt.RuleGroups');
    const groupsNode = root.get('groups', true);
    const groupNodes = groupsNode === undefined || (isScalar(groupsNode) && groupsNode.value === null) ? [] : isSeq(groupsNode) ? groupsNode.items : null;
    if (groupNodes === null) return fail(`yaml: unmarshal errors:\n  line ${pos(groupsNode as YamlNode).line}: cannot unmarshal into []rulefmt.RuleGroup`);
    // First pass: structure and types (promtool's strict unmarshal stops at these).
    const raw = groupNodes.map((g) => {
      if (!isMap(g)) throw new RuleFileError([`yaml: unmarshal errors:\n  line ${pos(g as YamlNode).line}: cannot unmarshal into rulefmt.RuleGroup`]);
      unknown(g, GROUP_FIELDS, 'rulefmt.RuleGroup');
      const rulesNode = g.get('rules', true);
      const ruleNodes = rulesNode === undefined || (isScalar(rulesNode) && rulesNode.value === null) ? [] : isSeq(rulesNode) ? rulesNode.items : null;
      if (ruleNodes === null) throw new RuleFileError([`yaml: unmarshal errors:\n  line ${pos(rulesNode as YamlNode).line}: cannot unmarshal into []rulefmt.RuleNode`]);
      const interval = str(g.get('interval', true), 'interval');
      const limitText = str(g.get('limit', true), 'limit');
      if (limitText !== '' && !/^\d+$/.test(limitText)) throw new RuleFileError([`yaml: unmarshal errors:\n  line ${pos(g.get('limit', true) as YamlNode).line}: cannot unmarshal !!str \`${limitText}\` into int`]);
      return {
        node: g,
        name: str(g.get('name', true), 'name'),
        intervalMs: interval === '' ? undefined : parseDuration(interval),
        limit: limitText === '' ? 0 : Number(limitText),
        rules: ruleNodes.map((r) => {
          if (!isMap(r)) throw new RuleFileError([`yaml: unmarshal errors:\n  line ${pos(r as YamlNode).line}: cannot unmarshal into rulefmt.RuleNode`]);
          unknown(r, RULE_FIELDS, 'rulefmt.RuleNode');
          const forText = str(r.get('for', true), 'for');
          const kfText = str(r.get('keep_firing_for', true), 'keep_firing_for');
          return {
            node: r,
            alert: str(r.get('alert', true), 'alert'),
            record: str(r.get('record', true), 'record'),
            expr: str(r.get('expr', true), 'expr'),
            forMs: forText === '' ? 0 : parseDuration(forText),
            keepFiringForMs: kfText === '' ? 0 : parseDuration(kfText),
            labels: strMap(r.get('labels', true), 'labels'),
            annotations: strMap(r.get('annotations', true), 'annotations'),
          };
        }),
      };
    });
    // Second pass: meaning, every problem listed.
    const errors: string[] = [];
    const seen = new Set<string>();
    const groups: RuleGroup[] = [];
    for (const g of raw) {
      const gp = pos(g.node.items[0]);
      if (g.name === '') errors.push(`${file}: ${gp.line}:${gp.col}: Groupname must not be empty`);
      else if (seen.has(g.name)) errors.push(`${file}: ${gp.line}:${gp.col}: groupname: ${JSON.stringify(g.name)} is repeated in the same file`);
      seen.add(g.name);
      const rules: Rule[] = [];
      g.rules.forEach((r, i) => {
        const name = r.alert || r.record;
        const at = (key: string): string => {
          const v = r.node.get(key, true) as YamlNode | undefined;
          if (!v) return '';
          const p = pos(v);
          return `${p.line}:${p.col}: `;
        };
        const push = (where: string, msg: string): void => {
          errors.push(`${file}: ${where}group ${JSON.stringify(g.name)}, rule ${i + 1}, ${JSON.stringify(name)}: ${msg}`);
        };
        if (r.alert && r.record) push(`${at('record')}${at('alert')}`, "only one of 'record' and 'alert' must be set");
        if (!r.alert && !r.record) push(at('record') || at('alert'), "one of 'record' or 'alert' must be set");
        let parsed: Expr | undefined;
        if (r.expr === '') push(at('expr'), "field 'expr' must be set in rule");
        else {
          try {
            parsed = parseExpr(r.expr);
          } catch (err) {
            if (!(err instanceof PromQLError)) throw err;
            push(at('expr'), `could not parse expression: ${err.message}`);
          }
        }
        if (r.record) {
          if (Object.keys(r.annotations).length > 0) push(at('record'), "invalid field 'annotations' in recording rule");
          if (r.forMs !== 0) push(at('record'), "invalid field 'for' in recording rule");
          if (r.keepFiringForMs !== 0) push(at('record'), "invalid field 'keep_firing_for' in recording rule");
          if (!METRIC_NAME.test(r.record)) push(at('record'), `invalid recording rule name: ${r.record}`);
        }
        for (const k of Object.keys(r.labels)) {
          if (!LABEL_NAME.test(k) || k === '__name__') push('', `invalid label name: ${k}`);
        }
        for (const k of Object.keys(r.annotations)) {
          if (!LABEL_NAME.test(k)) push('', `invalid annotation name: ${k}`);
        }
        if (r.alert) {
          for (const [kind, m] of [['label', r.labels], ['annotation', r.annotations]] as const) {
            for (const [k, v] of Object.entries(m)) {
              try {
                checkTemplate(v, `__alert_${r.alert}`);
              } catch (err) {
                push('', `${kind} ${JSON.stringify(k)}: ${(err as Error).message}`);
              }
            }
          }
        }
        if (!parsed) return;
        if (r.alert && !r.record) {
          rules.push({ kind: 'alert', name: r.alert, expr: r.expr, parsed, forMs: r.forMs, keepFiringForMs: r.keepFiringForMs, labels: r.labels, annotations: r.annotations });
        } else if (r.record && !r.alert) {
          rules.push({ kind: 'record', name: r.record, expr: r.expr, parsed, labels: r.labels });
        }
      });
      groups.push({ name: g.name, intervalMs: g.intervalMs, limit: g.limit, rules });
    }
    return { groups: errors.length > 0 ? [] : groups, errors };
  } catch (err) {
    if (err instanceof RuleFileError) return fail(err.errors.join('\n'));
    throw err;
  }
}

/**
 * Rules that appear twice in a file with the same name and labels, which `promtool check rules`
 * reports as a lint problem (`duplicate rule(s) found`) without failing the file.
 */
export function duplicateRules(groups: readonly RuleGroup[]): { name: string; labels: Record<string, string> }[] {
  const out: { name: string; labels: Record<string, string> }[] = [];
  // Across the whole file, as promtool's checkDuplicates.
  const seen = new Set<string>();
  for (const g of groups) {
    for (const r of g.rules) {
      const key = JSON.stringify([r.name, Object.entries(r.labels).sort()]);
      if (seen.has(key)) out.push({ name: r.name, labels: r.labels });
      seen.add(key);
    }
  }
  return out;
}

/**
 * Parses a rule file, throwing when it is invalid.
 * @throws RuleFileError with every reason (see {@link loadRuleFile}).
 */
export function parseRuleFile(text: string, file = 'rules.yml'): RuleGroup[] {
  const r = loadRuleFile(text, file);
  if (r.errors.length > 0) throw new RuleFileError(r.errors);
  return r.groups;
}
