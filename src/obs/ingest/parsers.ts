/**
 * The three push formats: the seed's JSON (`{"name","value","labels","timestamp"}`), Prometheus
 * text exposition 0.0.4 (with or without timestamps), and Prometheus remote-write 1.0
 * (snappy-compressed protobuf `WriteRequest`).
 */
import protobuf from 'protobufjs';
import snappy from 'snappyjs';
import { BeaconError, InvalidArgumentError } from '../../errors.js';
import type { Label } from '../tsdb/index.js';
import { SeriesBatch, promName, type LabelLimits } from './batch.js';

// --- JSON -----------------------------------------------------------------------------------------

function jsonValue(v: unknown, where: string): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    // JSON has no NaN or Inf: they may be sent as Prometheus spells them.
    if (v === 'NaN') return Number.NaN;
    if (v === '+Inf' || v === 'Inf') return Infinity;
    if (v === '-Inf') return -Infinity;
  }
  throw new InvalidArgumentError(`${where}.value must be a number (or "NaN", "+Inf", "-Inf")`, { field: `${where}.value` });
}

function jsonTimestamp(v: unknown, where: string, now: number): number {
  if (v === undefined || v === null) return now;
  if (typeof v === 'number' && Number.isFinite(v)) return Math.round(v);
  if (typeof v === 'string') {
    const t = Date.parse(v);
    if (!Number.isNaN(t) && /^\d{4}-\d\d-\d\dT/.test(v)) return t;
  }
  throw new InvalidArgumentError(`${where}.timestamp must be milliseconds since the epoch or an RFC 3339 time such as 2026-01-02T15:04:05Z`, {
    field: `${where}.timestamp`,
  });
}

/**
 * Reads the seed's JSON push: one object or an array of them, each
 * `{"name": "api.latency", "value": 500, "labels": {"endpoint": "/users"}, "timestamp": 1767366245000}`.
 * `name` is mapped to a Prometheus name by {@link promName}; `timestamp` (ms or RFC 3339) defaults to `now`.
 * @throws InvalidArgumentError naming the first bad field (`[3].labels.endpoint`…).
 */
export function parseJsonPush(body: unknown, now: number, limits?: LabelLimits): SeriesBatch {
  const items = Array.isArray(body) ? body : [body];
  const batch = new SeriesBatch(limits);
  items.forEach((item: unknown, i) => {
    const where = Array.isArray(body) ? `[${i}]` : 'metric';
    if (item === null || typeof item !== 'object' || Array.isArray(item)) throw new InvalidArgumentError(`${where} must be an object {"name", "value", "labels"?, "timestamp"?}`);
    const o = item as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (k !== 'name' && k !== 'value' && k !== 'labels' && k !== 'timestamp') {
        throw new InvalidArgumentError(`unknown field '${k}' in ${where}; allowed: name, value, labels, timestamp`, { field: `${where}.${k}` });
      }
    }
    if (typeof o.name !== 'string') throw new InvalidArgumentError(`${where}.name must be a string such as "api.latency"`, { field: `${where}.name` });
    const labels: Label[] = [{ name: '__name__', value: promName(o.name) }];
    if (o.labels !== undefined) {
      if (o.labels === null || typeof o.labels !== 'object' || Array.isArray(o.labels)) {
        throw new InvalidArgumentError(`${where}.labels must be an object of string values`, { field: `${where}.labels` });
      }
      for (const [name, value] of Object.entries(o.labels as Record<string, unknown>)) {
        if (typeof value !== 'string') throw new InvalidArgumentError(`${where}.labels.${name} must be a string`, { field: `${where}.labels.${name}` });
        if (name === '__name__') throw new InvalidArgumentError(`${where}.labels may not set __name__; use "name"`, { field: `${where}.labels.__name__` });
        labels.push({ name, value });
      }
    }
    batch.add(labels, jsonTimestamp(o.timestamp, where, now), jsonValue(o.value, where));
  });
  return batch;
}

// --- text exposition ------------------------------------------------------------------------------

function parseFloatToken(s: string, line: number): number {
  switch (s) {
    case 'NaN':
      return Number.NaN;
    case '+Inf':
    case 'Inf':
      return Infinity;
    case '-Inf':
      return -Infinity;
  }
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) throw new InvalidArgumentError(`line ${line}: invalid sample value '${s.slice(0, 40)}'`, { line });
  return Number(s);
}

/**
 * Reads Prometheus text exposition format 0.0.4 (and the OpenMetrics `# EOF` line). Samples
 * without a timestamp get `now`. `extra` labels are added to every series (a scrape's `job` and
 * `instance`); with `honorLabels` false, a scraped label that clashes with one is renamed
 * `exported_<name>` (Prometheus's rule).
 * @throws InvalidArgumentError with the line number of the first malformed line.
 */
export function parseTextPush(text: string, now: number, limits?: LabelLimits, extra: Label[] = [], honorLabels = false): SeriesBatch {
  const batch = new SeriesBatch(limits);
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = (lines[n] as string).replace(/\r$/, '');
    const lineNo = n + 1;
    if (line.trim() === '' || line.startsWith('#')) continue;
    let i = 0;
    const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (nameMatch === null) throw new InvalidArgumentError(`line ${lineNo}: expected a metric name at the start of '${line.slice(0, 60)}'`, { line: lineNo });
    const labels: Label[] = [{ name: '__name__', value: nameMatch[0] }];
    i = nameMatch[0].length;
    if (line[i] === '{') {
      i++;
      for (;;) {
        while (line[i] === ' ') i++;
        if (line[i] === '}') {
          i++;
          break;
        }
        const ln = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i));
        if (ln === null) throw new InvalidArgumentError(`line ${lineNo}: expected a label name at column ${i + 1}`, { line: lineNo });
        i += ln[0].length;
        while (line[i] === ' ') i++;
        if (line[i] !== '=' || line[i + 1] !== '"') throw new InvalidArgumentError(`line ${lineNo}: expected ="value" after label '${ln[0]}' at column ${i + 1}`, { line: lineNo });
        i += 2;
        let value = '';
        for (;;) {
          const c = line[i];
          if (c === undefined) throw new InvalidArgumentError(`line ${lineNo}: unterminated label value of '${ln[0]}'`, { line: lineNo });
          if (c === '"') break;
          if (c === '\\') {
            const e = line[i + 1];
            if (e === 'n') value += '\n';
            else if (e === '\\' || e === '"') value += e;
            else throw new InvalidArgumentError(`line ${lineNo}: invalid escape '\\${e ?? ''}' in label '${ln[0]}'`, { line: lineNo });
            i += 2;
            continue;
          }
          value += c;
          i++;
        }
        i++;
        labels.push({ name: ln[0], value });
        while (line[i] === ' ') i++;
        if (line[i] === ',') {
          i++;
          continue;
        }
        if (line[i] === '}') {
          i++;
          break;
        }
        throw new InvalidArgumentError(`line ${lineNo}: expected ',' or '}' at column ${i + 1}`, { line: lineNo });
      }
    }
    const rest = line.slice(i).trim().split(/[ \t]+/);
    if (rest.length < 1 || rest.length > 2 || rest[0] === '') throw new InvalidArgumentError(`line ${lineNo}: expected 'value [timestamp]' after the series`, { line: lineNo });
    const v = parseFloatToken(rest[0] as string, lineNo);
    let t = now;
    if (rest.length === 2) {
      const ts = rest[1] as string;
      if (!/^-?\d+$/.test(ts)) throw new InvalidArgumentError(`line ${lineNo}: invalid timestamp '${ts.slice(0, 40)}' (integer milliseconds expected)`, { line: lineNo });
      t = Number(ts);
    }
    batch.add(withExtra(labels, extra, honorLabels), t, v);
  }
  return batch;
}

function withExtra(labels: Label[], extra: Label[], honor: boolean): Label[] {
  if (extra.length === 0) return labels;
  const out = labels.slice();
  for (const e of extra) {
    const at = out.findIndex((l) => l.name === e.name);
    if (at < 0) out.push(e);
    else if (!honor) {
      out.push({ name: `exported_${e.name}`, value: (out[at] as Label).value });
      out[at] = e;
    }
  }
  return out;
}

// --- remote write ---------------------------------------------------------------------------------

/** The remote-write 1.0 schema (prometheus/prompb types.proto and remote.proto), the fields Beacon reads. */
const REMOTE_WRITE_SCHEMA = {
  nested: {
    prometheus: {
      nested: {
        WriteRequest: { fields: { timeseries: { rule: 'repeated', type: 'TimeSeries', id: 1 } } },
        TimeSeries: {
          fields: {
            labels: { rule: 'repeated', type: 'Label', id: 1 },
            samples: { rule: 'repeated', type: 'Sample', id: 2 },
          },
        },
        Label: { fields: { name: { type: 'string', id: 1 }, value: { type: 'string', id: 2 } } },
        Sample: { fields: { value: { type: 'double', id: 1 }, timestamp: { type: 'int64', id: 2 } } },
      },
    },
  },
};

const WriteRequest = protobuf.Root.fromJSON(REMOTE_WRITE_SCHEMA).lookupType('prometheus.WriteRequest');

/** Largest decompressed remote-write body accepted, bytes (Prometheus's receiver has no smaller one worth matching). */
export const MAX_REMOTE_WRITE_BYTES = 64 * 1024 * 1024;

/**
 * Reads a remote-write 1.0 body: snappy block format around a protobuf `WriteRequest`. Values are
 * kept bit for bit (stale markers).
 * @throws InvalidArgumentError when the body is not snappy, not the protobuf, or holds a bad series.
 */
export function parseRemoteWrite(body: Uint8Array, limits?: LabelLimits): SeriesBatch {
  let raw: Uint8Array;
  try {
    raw = snappy.uncompress(body, MAX_REMOTE_WRITE_BYTES);
  } catch (err) {
    throw new InvalidArgumentError(`the remote-write body is not snappy block-compressed: ${(err as Error).message}`, { reason: 'bad_snappy' });
  }
  const batch = new SeriesBatch(limits);
  try {
    decodeWriteRequest(raw, batch);
  } catch (err) {
    if (err instanceof BeaconError) throw err; // a bad series: its own message
    throw new InvalidArgumentError(`the remote-write body is not a protobuf WriteRequest: ${(err as Error).message}`, { reason: 'bad_protobuf' });
  }
  return batch;
}

/**
 * Decodes a `WriteRequest` ({@link REMOTE_WRITE_SCHEMA}) straight into a batch with protobufjs's
 * wire reader: no object per sample (the generated decoder's cost at 100K samples/s is mostly
 * garbage collection), and each double copied as its 8 bytes, so NaN payloads survive.
 * @throws RangeError (from the reader) on a truncated or malformed message.
 */
function decodeWriteRequest(buf: Uint8Array, batch: SeriesBatch): void {
  const r = protobuf.Reader.create(buf);
  // Reused across series: a series' samples are decoded here, then copied into the batch at once.
  let ts = new Float64Array(64);
  let vs = new Float64Array(64);
  let vsBytes = new Uint8Array(vs.buffer);
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag !== ((1 << 3) | 2)) {
      r.skipType(tag & 7); // metadata (field 3) and anything newer
      continue;
    }
    const end = sub(r);
    const labels: Label[] = [];
    let n = 0;
    while (r.pos < end) {
      const t = r.uint32();
      if (t === ((1 << 3) | 2)) {
        const e = sub(r);
        let name = '';
        let val = '';
        while (r.pos < e) {
          const lt = r.uint32();
          if (lt === ((1 << 3) | 2)) name = r.string();
          else if (lt === ((2 << 3) | 2)) val = r.string();
          else r.skipType(lt & 7);
        }
        labels.push({ name, value: val });
      } else if (t === ((2 << 3) | 2)) {
        const e = sub(r);
        if (n === vs.length) {
          const nts = new Float64Array(n * 2);
          nts.set(ts);
          ts = nts;
          const nvs = new Float64Array(n * 2);
          nvs.set(vs);
          vs = nvs;
          vsBytes = new Uint8Array(vs.buffer);
        }
        let at = 0;
        const o = n * 8;
        vs[n] = 0;
        while (r.pos < e) {
          const st = r.uint32();
          if (st === ((1 << 3) | 1)) {
            if (r.pos + 8 > e) throw new RangeError('sample value truncated');
            // Byte by byte, not as a number: the bits stay exact (stale markers) and nothing is allocated.
            const src = r.buf;
            const p = r.pos;
            for (let k = 0; k < 8; k++) vsBytes[o + k] = src[p + k] as number;
            r.pos = p + 8;
          } else if (st === ((2 << 3) | 0)) {
            at = readInt64(r);
          } else r.skipType(st & 7);
        }
        ts[n] = at;
        n++;
      } else r.skipType(t & 7); // exemplars, native histograms: not stored
    }
    if (n === 0) continue;
    batch.addSamples(labels, ts, vs, n);
  }
}

/**
 * Reads an int64 varint as a number (protobufjs's `int64()` builds a Long object per call, most of
 * the decoding cost at 100K samples/s; millisecond timestamps fit a double exactly).
 * @throws RangeError when the buffer ends inside it.
 */
function readInt64(r: protobuf.Reader): number {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    const b = r.buf[r.pos++];
    if (b === undefined || r.pos > r.len) throw new RangeError('varint truncated');
    result += (b & 0x7f) * mul;
    if (b < 0x80) return result >= 2 ** 63 ? result - 2 ** 64 : result; // negative: two's complement over 64 bits
    mul *= 128;
  }
  throw new RangeError('varint longer than 10 bytes');
}

/** Reads a length prefix and returns where the embedded message ends. @throws RangeError past the buffer. */
function sub(r: protobuf.Reader): number {
  const len = r.uint32();
  const end = r.pos + len;
  if (end > r.len) throw new RangeError(`embedded message of ${len} bytes runs past the end`);
  return end;
}

/** Encodes a remote-write body (tests and benchmarks send real remote-write requests with it). */
export function encodeRemoteWrite(series: { labels: Label[]; samples: { value: number; timestamp: number }[] }[]): Uint8Array {
  const msg = WriteRequest.fromObject({ timeseries: series });
  return snappy.compress(WriteRequest.encode(msg).finish());
}
