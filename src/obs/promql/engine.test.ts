import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { STALE_NAN_BITS, TooManySamplesError } from '../tsdb/index.js';
import type { Querier, SeriesSamples } from '../tsdb/index.js';
import {
  createMemoryQuerier, evaluateInstant, formatValue, instantQuery, parseExpr, parseSeriesNotation, PromQLError, rangeQuery,
} from './index.js';

function counters(n: number): ReturnType<typeof createMemoryQuerier> {
  const q = createMemoryQuerier();
  for (let i = 0; i < n; i++) q.load(`requests_total{job="j${i % 3}", instance="i${i}"}`, '0+10x60', 60_000);
  return q;
}

/** A querier over fixed series, as the store hands them over (typed arrays). */
function fixedQuerier(series: SeriesSamples[]): Querier {
  return {
    select: () => series,
    labelNames: () => [],
    labelValues: () => [],
    series: () => series.map((s) => s.labels),
  };
}

describe('parseExpr', () => {
  it('refuses a syntax error with its line and column', () => {
    assert.throws(() => parseExpr('sum(rate(x[5m])'), (err: unknown) => {
      assert.ok(err instanceof PromQLError);
      assert.equal(err.errorType, 'bad_data');
      assert.equal(err.code, 'invalid_argument');
      assert.match(err.message, /^1:16: parse error: unexpected end of input/);
      assert.equal(err.position, 15);
      return true;
    });
    assert.throws(() => parseExpr('x +\n  )'), /^PromQLError: 2:3: parse error/);
    assert.throws(() => parseExpr('   '), /no expression found in input/);
    // Nesting deeper than the JS stack is bad input too, not a crash.
    assert.throws(() => parseExpr(`1${' + 1'.repeat(50_000)}`), (err: unknown) => err instanceof PromQLError && err.errorType === 'bad_data');
  });

  it('gives the syntax tree with modifiers on the selector', () => {
    const e = parseExpr('rate(http_requests_total{job=~"api|web"}[5m] offset 1m @ 100)');
    assert.equal(e.kind, 'call');
    if (e.kind !== 'call') return;
    const m = e.args[0]!;
    assert.equal(m.kind, 'matrixSelector');
    if (m.kind !== 'matrixSelector') return;
    assert.equal(m.rangeMs, 300_000);
    assert.equal(m.selector.offsetMs, 60_000);
    assert.deepEqual(m.selector.at, { kind: 'time', ms: 100_000 });
    assert.deepEqual(m.selector.matchers, [
      { name: '__name__', op: '=', value: 'http_requests_total' },
      { name: 'job', op: '=~', value: 'api|web' },
    ]);
  });

  it('reads string escapes, quoted label names and durations with several units', () => {
    const e = parseExpr('{"service.name"="a\\"b", job=`x\\y`}[1h30m]');
    assert.equal(e.kind, 'matrixSelector');
    if (e.kind !== 'matrixSelector') return;
    assert.equal(e.rangeMs, 5_400_000);
    assert.deepEqual(e.selector.matchers, [
      { name: 'service.name', op: '=', value: 'a"b' },
      { name: 'job', op: '=', value: 'x\\y' },
    ]);
  });
});

describe('parseSeriesNotation', () => {
  it('expands promtool notation', () => {
    assert.deepEqual(parseSeriesNotation('1+2x3'), [1, 3, 5, 7]);
    assert.deepEqual(parseSeriesNotation('10-1x2 _ stale'), [10, 9, 8, undefined, 'stale']);
    assert.deepEqual(parseSeriesNotation('1x5 3 _x2'), [1, 1, 1, 1, 1, 1, 3, undefined, undefined]);
    assert.deepEqual(parseSeriesNotation('-1.5e1 +Inf -Inf'), [-15, Infinity, -Infinity]);
    assert.ok(Number.isNaN(parseSeriesNotation('NaN')[0]));
  });

  it('names the item it cannot read', () => {
    assert.throws(() => parseSeriesNotation('1 2 x3'), (err: unknown) => err instanceof PromQLError && /"x3"/.test(err.message));
  });
});

describe('formatValue', () => {
  it('writes numbers as Prometheus does (no exponent, shortest digits)', () => {
    assert.equal(formatValue(1e21), '1000000000000000000000');
    assert.equal(formatValue(1.5e-7), '0.00000015');
    assert.equal(formatValue(0.1 + 0.2), '0.30000000000000004');
    assert.equal(formatValue(-0), '-0');
    assert.equal(formatValue(NaN), 'NaN');
    assert.equal(formatValue(Infinity), '+Inf');
    assert.equal(formatValue(-Infinity), '-Inf');
  });
});

describe('instantQuery and rangeQuery', () => {
  it('answers a range selector with the raw samples, stale markers left out', async () => {
    const q = createMemoryQuerier();
    q.load('x{a="b"}', '1 2 stale 4', 30_000);
    const data = await instantQuery(q, 'x[2m]', 90_000);
    assert.deepEqual(data, { resultType: 'matrix', result: [{ metric: { __name__: 'x', a: 'b' }, values: [[0, '1'], [30, '2'], [90, '4']] }] });
  });

  it('honours a stale marker written with the contract bit pattern into a Float64Array', async () => {
    const values = new Float64Array([5, 0]);
    new BigUint64Array(values.buffer)[1] = STALE_NAN_BITS;
    const q = fixedQuerier([{ labels: [{ name: '__name__', value: 'up' }], timestamps: new Float64Array([0, 15_000]), values }]);
    assert.deepEqual((await instantQuery(q, 'up', 10_000)).result, [{ metric: { __name__: 'up' }, value: [10, '5'] }]);
    assert.deepEqual((await instantQuery(q, 'up', 20_000)).result, []);
    // A plain NaN is a value, not a marker.
    const q2 = fixedQuerier([{ labels: [{ name: '__name__', value: 'up' }], timestamps: [0], values: [NaN] }]);
    assert.deepEqual((await instantQuery(q2, 'up', 10_000)).result, [{ metric: { __name__: 'up' }, value: [10, 'NaN'] }]);
  });

  it('gives a scalar and a string as Prometheus does', async () => {
    const q = createMemoryQuerier();
    assert.deepEqual(await instantQuery(q, '1 + 1', 1_500), { resultType: 'scalar', result: [1.5, '2'] });
    assert.deepEqual(await instantQuery(q, '"hello"', 1_000), { resultType: 'string', result: [1, 'hello'] });
  });

  it('evaluates a range query step by step, series sorted by labels', async () => {
    const q = counters(3);
    const data = await rangeQuery(q, 'sum by (job) (rate(requests_total[5m]))', 600_000, 900_000, 150_000);
    assert.equal(data.resultType, 'matrix');
    if (data.resultType !== 'matrix') return;
    assert.deepEqual(data.result.map((r) => r.metric.job), ['j0', 'j1', 'j2']);
    for (const r of data.result) assert.deepEqual(r.values.map((v) => v[0]), [600, 750, 900]);
    assert.equal(Number(data.result[0]!.values[0]![1]).toFixed(6), (10 / 60).toFixed(6));
  });

  it('keeps `@ end()` fixed across the steps of a range query', async () => {
    const q = counters(1);
    const data = await rangeQuery(q, 'requests_total @ end()', 0, 600_000, 300_000);
    assert.deepEqual(data.result, [{ metric: { __name__: 'requests_total', instance: 'i0', job: 'j0' }, values: [[0, '100'], [300, '100'], [600, '100']] }]);
  });

  it('refuses bad range parameters with bad_data', async () => {
    const q = counters(1);
    const bad = async (p: Promise<unknown>, re: RegExp): Promise<void> => {
      await assert.rejects(p, (err: unknown) => err instanceof PromQLError && err.errorType === 'bad_data' && re.test(err.message));
    };
    await bad(rangeQuery(q, 'up', 0, 1000, 0), /zero or negative query resolution step/);
    await bad(rangeQuery(q, 'up', 1000, 0, 1), /end timestamp must not be before start time/);
    await bad(rangeQuery(q, 'up', 0, 20_000, 1), /exceeded maximum resolution of 11,000 points/);
    await bad(rangeQuery(q, 'up[5m]', 0, 1000, 1000), /invalid expression type "range vector" for range query/);
  });
});

describe('limits', () => {
  it('refuses a query holding more samples than maxSamples, as Prometheus words it', async () => {
    const q = counters(30);
    await assert.rejects(instantQuery(q, 'sum(count_over_time(requests_total[1h]))', 3_600_000, { maxSamples: 100 }), (err: unknown) => {
      assert.ok(err instanceof PromQLError);
      assert.equal(err.errorType, 'execution');
      assert.equal(err.code, 'too_large');
      assert.match(err.message, /query processing would load too many samples into memory in query execution/);
      return true;
    });
    // The same query under a sufficient limit answers.
    const ok = await instantQuery(q, 'sum(count_over_time(requests_total[1h]))', 3_600_000, { maxSamples: 10_000 });
    assert.deepEqual(ok.result, [{ metric: {}, value: [3600, '1830'] }]);
  });

  it('maps a store that refuses a selection (TooManySamplesError) to the same error', async () => {
    const q: Querier = { ...fixedQuerier([]), select: () => { throw new TooManySamplesError(5); } };
    await assert.rejects(instantQuery(q, 'up', 0), (err: unknown) => err instanceof PromQLError && err.code === 'too_large');
  });

  it('stops a query past its timeout', async () => {
    const q = counters(3);
    await assert.rejects(instantQuery(q, 'count_over_time(requests_total[1d:1s])', 3_600_000, { timeoutMs: 1 }), (err: unknown) => {
      assert.ok(err instanceof PromQLError);
      assert.equal(err.errorType, 'timeout');
      assert.match(err.message, /query timed out in query execution/);
      return true;
    });
  });

  it('stops a running range query when its signal aborts', async () => {
    const q = counters(30);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 30);
    await assert.rejects(rangeQuery(q, 'sum(count_over_time(requests_total[1h:5s]))', 0, 3_600_000 * 2, 1000, { signal: ac.signal }), (err: unknown) => {
      assert.ok(err instanceof PromQLError);
      assert.equal(err.errorType, 'canceled');
      return true;
    });
  });
});

describe('evaluateInstant', () => {
  it('gives label sets and numbers, or a number for a scalar', async () => {
    const q = counters(2);
    const v = await evaluateInstant(q, 'requests_total > 50', 600_000);
    assert.ok(Array.isArray(v));
    assert.deepEqual(v.map((s) => [s.labels.find((l) => l.name === 'instance')?.value, s.value]), [['i0', 100], ['i1', 100]]);
    assert.equal(await evaluateInstant(q, 'scalar(sum(requests_total))', 600_000), 200);
    assert.equal(await evaluateInstant(q, parseExpr('time()'), 600_000), 600);
    await assert.rejects(evaluateInstant(q, 'requests_total[5m]', 0), (err: unknown) => err instanceof PromQLError && /not a vector or scalar/.test(err.message));
  });
});

describe('createMemoryQuerier', () => {
  it('selects by the four matchers, anchored, and answers label look-ups', async () => {
    const q = createMemoryQuerier();
    q.add('m{job="api", path="/users"}', [0], [1]);
    q.add({ __name__: 'm', job: 'web', path: '/u' }, [0], [2]);
    q.add([{ name: '__name__', value: 'n' }, { name: 'job', value: 'api' }], [0], [3]);
    const names = (s: { labels: readonly { name: string; value: string }[] }[]): string[] =>
      s.map((x) => x.labels.map((l) => l.value).join(','));
    assert.deepEqual(names(await q.select([{ name: 'path', op: '=~', value: '/u' }], 0, 0)), ['m,web,/u']);
    assert.deepEqual(names(await q.select([{ name: '__name__', op: '=', value: 'm' }, { name: 'job', op: '!=', value: 'api' }], 0, 0)), ['m,web,/u']);
    assert.deepEqual(names(await q.select([{ name: '__name__', op: '=~', value: '.+' }, { name: 'job', op: '!~', value: 'w.*' }], 0, 0)), ['m,api,/users', 'n,api']);
    assert.throws(() => q.select([{ name: 'job', op: '!~', value: 'w.*' }], 0, 0), /at least one matcher must not match the empty string/);
    assert.deepEqual(await q.labelNames([], 0, 0), ['__name__', 'job', 'path']);
    assert.deepEqual(await q.labelValues('job', [], 0, 0), ['api', 'web']);
    assert.equal((await q.series([{ name: 'job', op: '=', value: 'api' }], 0, 0)).length, 2);
    assert.throws(() => q.add('m{job="api", path="/users"}', [0], [1]), /out of order/);
  });
});

describe('robustness', () => {
  it('never fails with anything but a PromQLError, whatever the query text', async () => {
    const fc = await import('fast-check');
    const q = createMemoryQuerier();
    q.load('x{a="1", le="0.5"}', '0+1x20 stale 3', 60_000);
    q.load('x{a="2", le="+Inf"}', '5 _ 7x10', 60_000);
    q.load('y{a="1"}', 'NaN 1 -Inf 2', 60_000);
    const tokens = [
      'x', 'y', '{a="1"}', '{a=~"1|2"}', '{a!~"2"}', '{__name__=~"x|y"}', '[5m]', '[1m:30s]', '[10m:]', 'offset 1m', '@ 60', '@ end()',
      '(', ')', ',', '+', '-', '*', '/', '%', '^', '==', '!=', '>', '<=', 'bool', 'and', 'or', 'unless', 'on(a)', 'ignoring(a)',
      'group_left', 'group_right(le)', 'sum', 'avg', 'topk', 'quantile', 'count_values', 'stddev', 'by (a)', 'without (le)',
      'rate', 'irate', 'deriv', 'predict_linear', 'histogram_quantile', 'label_replace', 'label_join', 'absent', 'scalar',
      'vector', 'time()', 'round', 'clamp', 'sort_desc', 'quantile_over_time', 'changes', 'timestamp', 'year', '0.5', '2',
      '-1', 'NaN', 'Inf', '"a"', '"(.*)"', '"$1"', '"le"', '1e3', '0x10',
    ];
    await fc.assert(fc.asyncProperty(fc.array(fc.constantFrom(...tokens), { minLength: 1, maxLength: 12 }), fc.integer({ min: 0, max: 30 }), async (parts, minute) => {
      const text = parts.join(' ');
      let ok = 0;
      for (const run of [
        () => instantQuery(q, text, minute * 60_000),
        () => rangeQuery(q, text, 0, minute * 60_000, 120_000),
      ]) {
        try {
          await run();
          ok++;
        } catch (err) {
          if (!(err instanceof PromQLError)) throw new Error(`${text}: ${(err as Error).stack}`);
        }
      }
      return ok >= 0;
    }), { numRuns: 3000 });
  });

  it('evaluates random well-typed expressions, range and instant, without crashing', async () => {
    const fc = await import('fast-check');
    const q = createMemoryQuerier();
    q.load('x{a="1", le="0.5"}', '0+1x20 stale 3', 60_000);
    q.load('x{a="2", le="+Inf"}', '5 _ 7x10', 60_000);
    q.load('y{a="1"}', 'NaN 1 -Inf 2', 60_000);
    const { vec } = fc.letrec<{ sel: string; mat: string; sc: string; vec: string }>((tie) => ({
      sel: fc.constantFrom('x', 'y', 'x{a="1"}', '{__name__=~"x|y"}', 'x offset 1m', 'x @ 120', 'y @ end()'),
      mat: fc.oneof(
        fc.tuple(fc.constantFrom('x', 'y', 'x{a="1"}'), fc.constantFrom('[5m]', '[1m]', '[10m] offset 2m')).map(([sel, r]) => `${sel}${r}`),
        tie('vec').map((v) => `(${v})[5m:1m]`),
      ),
      sc: fc.oneof({ depthSize: 'small' }, fc.constantFrom('1', '0.5', '-2', 'NaN', 'Inf', 'time()'), tie('vec').map((v) => `scalar(${v})`)),
      vec: fc.oneof({ depthSize: 'small' },
        tie('sel'),
        fc.tuple(fc.constantFrom('rate', 'irate', 'increase', 'delta', 'deriv', 'changes', 'resets', 'avg_over_time', 'stddev_over_time',
          'last_over_time', 'absent_over_time', 'present_over_time'), tie('mat')).map(([f, mt]) => `${f}(${mt})`),
        fc.tuple(fc.constantFrom('abs', 'ceil', 'sqrt', 'ln', 'sort_desc', 'timestamp', 'absent', 'year', 'sgn'), tie('vec')).map(([f, x]) => `${f}(${x})`),
        fc.tuple(fc.constantFrom('sum', 'avg', 'max', 'count', 'stddev', 'group'), fc.constantFrom('', ' by (a)', ' without (le)'), tie('vec'))
          .map(([a, g, x]) => `${a}${g} (${x})`),
        fc.tuple(fc.constantFrom('topk', 'bottomk', 'quantile'), tie('sc'), tie('vec')).map(([a, sc, x]) => `${a}(${sc}, ${x})`),
        fc.tuple(tie('vec'), fc.constantFrom('+', '/', '>', '== bool', 'and', 'or', 'unless', '* on(a) group_left()', '- ignoring(le)'), tie('vec'))
          .map(([l, o, r]) => `(${l}) ${o} (${r})`),
        fc.tuple(tie('vec'), fc.constantFrom('+', '>', '^', '%'), tie('sc')).map(([l, o, r]) => `(${l}) ${o} (${r})`),
        fc.tuple(tie('sc'), tie('vec')).map(([sc, x]) => `histogram_quantile(${sc}, ${x})`),
        tie('vec').map((x) => `label_replace(${x}, "b", "$1", "a", "(.*)")`),
        tie('sc').map((sc) => `vector(${sc})`),
        tie('vec').map((x) => `-(${x})`),
      ),
    }));
    let answered = 0;
    await fc.assert(fc.asyncProperty(vec, fc.integer({ min: 0, max: 30 }), async (text, minute) => {
      for (const run of [() => instantQuery(q, text, minute * 60_000), () => rangeQuery(q, text, 0, minute * 60_000, 120_000)]) {
        try {
          await run();
          answered++;
        } catch (err) {
          // Only the errors Prometheus also gives for such queries (matching, duplicate label sets).
          if (!(err instanceof PromQLError) || err.errorType !== 'execution') throw new Error(`${text}: ${(err as Error).message}`);
        }
      }
    }), { numRuns: 1000 });
    assert.ok(answered > 1000, `only ${answered} of 2000 evaluations answered`);
  });
});
