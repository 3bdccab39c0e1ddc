/** `beacon query EXPR [--time T | --range 1h --step 1m]`: PromQL through the node's Prometheus API, as a table or `--json`. */
import { InvalidArgumentError as CommanderInvalidArgument, type Command } from 'commander';
import { BeaconError, InvalidArgumentError } from '../errors.js';
import { table } from './config.js';
import { contextOf, out, outJson } from './context.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Parses a Prometheus duration such as `1h` or `30s` into ms (commander turns a throw into a usage error). */
export function parseCliDuration(v: string): number {
  if (!/^(\d+(ms|s|m|h|d|w))+$/.test(v)) throw new CommanderInvalidArgument('expected a duration such as 30s, 5m or 1h30m');
  let ms = 0;
  for (const m of v.matchAll(/(\d+)(ms|s|m|h|d|w)/g)) ms += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
  return ms;
}

interface QueryOptions {
  time?: string;
  range?: number;
  step?: number;
}

type PromValue = [number, string];
interface PromData {
  resultType: 'vector' | 'matrix' | 'scalar' | 'string';
  result: unknown;
}

/** `{__name__="x", a="b"}` as Prometheus prints a series: `x{a="b"}`. */
export function seriesName(metric: Record<string, string>): string {
  const name = metric.__name__ ?? '';
  const rest = Object.entries(metric)
    .filter(([k]) => k !== '__name__')
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return rest.length === 0 && name !== '' ? name : `${name}{${rest.join(', ')}}`;
}

function time(t: number): string {
  return new Date(t * 1000).toISOString();
}

/** Adds `query`. */
export function registerQueryCommand(program: Command): void {
  program
    .command('query')
    .description('evaluate a PromQL expression (instant, or over --range at --step) and print a table')
    .argument('<expr>', 'PromQL, e.g. \'rate(beacon_http_requests_total[5m])\'')
    .option('--time <t>', 'evaluation time of an instant query (RFC 3339 or Unix seconds; default now)')
    .option('--range <duration>', 'evaluate over the last DURATION (a range query), e.g. 1h', parseCliDuration)
    .option('--step <duration>', 'resolution of a range query (default: range / 60, at least 1s)', parseCliDuration)
    .action(async (expr: string, o: QueryOptions, cmd: Command) => {
      const { client, json } = contextOf(cmd);
      let path: string;
      const query: Record<string, string> = { query: expr };
      if (o.range !== undefined) {
        const end = Date.now() / 1000;
        const step = (o.step ?? Math.max(1000, Math.floor(o.range / 60))) / 1000;
        Object.assign(query, { start: String(end - o.range / 1000), end: String(end), step: String(step) });
        path = '/api/v1/query_range';
      } else {
        if (o.step !== undefined) throw new InvalidArgumentError('--step needs --range');
        if (o.time !== undefined) query.time = o.time;
        path = '/api/v1/query';
      }
      let data: PromData;
      try {
        const res = await client.transport.request<{ status: string; data: PromData }>('GET', path, { query });
        data = res.body.data;
      } catch (err) {
        // The Prometheus API answers {"status":"error","errorType","error"}: show its message.
        const m = err instanceof BeaconError ? /(\{"status":"error".*\})/.exec(err.message) : null;
        if (m !== null) {
          const body = JSON.parse(m[1] as string) as { errorType: string; error: string };
          throw new InvalidArgumentError(`${body.errorType}: ${body.error}`);
        }
        throw err;
      }
      if (json) {
        outJson(data);
        return;
      }
      switch (data.resultType) {
        case 'scalar':
        case 'string': {
          const [t, v] = data.result as PromValue;
          out(`${v} @ ${time(t)}`);
          return;
        }
        case 'vector': {
          const rows = (data.result as { metric: Record<string, string>; value: PromValue }[]).map((r) => [seriesName(r.metric), r.value[1]]);
          if (rows.length === 0) {
            out('(no series)');
            return;
          }
          for (const line of table([['SERIES', 'VALUE'], ...rows])) out(line);
          return;
        }
        case 'matrix': {
          const series = data.result as { metric: Record<string, string>; values: PromValue[] }[];
          if (series.length === 0) {
            out('(no series)');
            return;
          }
          const rows: string[][] = [['SERIES', 'TIME', 'VALUE']];
          for (const s of series) {
            const name = seriesName(s.metric);
            s.values.forEach(([t, v], i) => rows.push([i === 0 ? name : '', time(t), v]));
          }
          for (const line of table(rows)) out(line);
          return;
        }
      }
    });
}
