/**
 * Transactions: the request shape (the HTTP API's JSON, with values given as text or bytes),
 * `Compare` and `Op` helpers, a small builder, and decoding of the results.
 */
import { kvFromWire, type KeyValue, type KeyValueWire } from './types.js';
import { valueToWire, type ValueInput } from './values.js';

/** What a compare looks at. A missing key has version, createRevision, modRevision and lease 0. */
export type CompareTarget = 'value' | 'version' | 'createRevision' | 'modRevision' | 'lease';
/** How the key's field must relate to the operand. */
export type CompareResult = '=' | '!=' | '<' | '>';

/**
 * One compare: `key` (or every key under it with `prefix`, or `[key, rangeEnd)`) whose `target`
 * must stand in `result` to `value` — bytes or text for `value`, an integer for the others.
 * `encoding: "base64"` marks a string `value` as base64 (as in the HTTP API).
 */
export interface TxnCompare {
  key: string;
  target: CompareTarget;
  result: CompareResult;
  value: ValueInput | number;
  encoding?: 'base64';
  prefix?: boolean;
  rangeEnd?: string;
}

/** A put inside a txn; `lease` attaches the key to a lease, `prevKv` returns the previous kv. */
export interface TxnPut {
  put: { key: string; value: ValueInput; encoding?: 'base64'; lease?: number; prevKv?: boolean; ignoreValue?: boolean; ignoreLease?: boolean };
}
/** A delete of a key, or of every key under a prefix, or of `[key, rangeEnd)`. */
export interface TxnDelete {
  delete: { key: string; prefix?: boolean; rangeEnd?: string; prevKv?: boolean };
}
/** A read of a key, a prefix or `[key, rangeEnd)`; `limit` 0 means no limit. */
export interface TxnRange {
  range: { key: string; prefix?: boolean; rangeEnd?: string; limit?: number; keysOnly?: boolean; countOnly?: boolean };
}
/** One op of a txn branch. */
export type TxnOp = TxnPut | TxnDelete | TxnRange;

/**
 * A whole txn: when every `compare` holds, `success` runs, else `failure`. Atomic, one revision.
 * The shape is the HTTP API's `POST /v1/txn` body, so a JSON file of that body is a valid request.
 */
export interface TxnRequest {
  compare?: TxnCompare[];
  success?: TxnOp[];
  failure?: TxnOp[];
}

/** The result of one op, in the order the ops were given. */
export type TxnOpResult =
  | { type: 'put'; prevKv?: KeyValue }
  | { type: 'delete'; deleted: number; prevKvs?: KeyValue[] }
  | { type: 'range'; kvs: KeyValue[]; more: boolean; count: number };

/** The answer of a txn: which branch ran (`succeeded` is true for `success`), the revision, each op's result. */
export interface TxnResponse {
  succeeded: boolean;
  revision: number;
  results: TxnOpResult[];
}

function compareOn(target: CompareTarget) {
  return (key: string, result: CompareResult, value: ValueInput | number): TxnCompare => ({ key, target, result, value });
}

/**
 * Builders for compares, e.g. `Compare.version('app/x', '=', 0)` ("app/x does not exist") or
 * `Compare.value('app/x', '=', 'blue')`.
 */
export const Compare = {
  value: compareOn('value') as (key: string, result: CompareResult, value: ValueInput) => TxnCompare,
  version: compareOn('version') as (key: string, result: CompareResult, version: number) => TxnCompare,
  createRevision: compareOn('createRevision') as (key: string, result: CompareResult, revision: number) => TxnCompare,
  modRevision: compareOn('modRevision') as (key: string, result: CompareResult, revision: number) => TxnCompare,
  lease: compareOn('lease') as (key: string, result: CompareResult, lease: number) => TxnCompare,
};

/** Builders for txn ops: `Op.put(key, value, {lease})`, `Op.delete(key, {prefix})`, `Op.get(key, {prefix})`. */
export const Op = {
  put: (key: string, value: ValueInput, opts: { lease?: number; prevKv?: boolean } = {}): TxnPut => ({ put: { key, value, ...opts } }),
  delete: (key: string, opts: { prefix?: boolean; prevKv?: boolean } = {}): TxnDelete => ({ delete: { key, ...opts } }),
  get: (key: string, opts: { prefix?: boolean; limit?: number; keysOnly?: boolean; countOnly?: boolean } = {}): TxnRange => ({
    range: { key, ...opts },
  }),
};

/**
 * Collects a txn and commits it with `commit()`.
 * @example
 * const res = await client.txn().if(Compare.version('lock', '=', 0)).then(Op.put('lock', 'me')).else(Op.get('lock')).commit();
 */
export class TxnBuilder {
  private readonly request: Required<TxnRequest> = { compare: [], success: [], failure: [] };

  constructor(private readonly run: (req: TxnRequest) => Promise<TxnResponse>) {}

  /** Adds compares; all of them must hold for the success branch. */
  if(...compares: TxnCompare[]): this {
    this.request.compare.push(...compares);
    return this;
  }

  /** Adds ops to the success branch. */
  then(...ops: TxnOp[]): this {
    this.request.success.push(...ops);
    return this;
  }

  /** Adds ops to the failure branch. */
  else(...ops: TxnOp[]): this {
    this.request.failure.push(...ops);
    return this;
  }

  /** Sends the txn. @throws the typed error of the server (invalid_argument, too_large, not_found for a missing lease …). */
  commit(): Promise<TxnResponse> {
    return this.run(this.request);
  }
}

/** Encodes a value that may already carry an explicit `encoding` (from JSON input). */
function wireValue(value: ValueInput, encoding: 'base64' | undefined): { value: string; encoding?: 'base64' } {
  if (typeof value === 'string' && encoding !== undefined) return { value, encoding };
  return valueToWire(value);
}

function opToWire(op: TxnOp): unknown {
  if ('put' in op) {
    const { value, encoding, ...rest } = op.put;
    return { put: { ...rest, ...wireValue(value, encoding) } };
  }
  return op;
}

/** The JSON body of `POST /v1/txn` for a request. */
export function txnToWire(req: TxnRequest): unknown {
  return {
    compare: (req.compare ?? []).map((c) => {
      if (c.target !== 'value' || typeof c.value === 'number') return c;
      const { value, encoding, ...rest } = c;
      return { ...rest, ...wireValue(value, encoding) };
    }),
    success: (req.success ?? []).map(opToWire),
    failure: (req.failure ?? []).map(opToWire),
  };
}

interface OpResultWire {
  put?: { prevKv?: KeyValueWire };
  delete?: { deleted: number; prevKvs?: KeyValueWire[] };
  range?: { kvs: KeyValueWire[]; more: boolean; count: number };
}

/** Decodes the answer of `POST /v1/txn`. */
export function txnFromWire(w: { succeeded: boolean; revision: number; results: OpResultWire[] }): TxnResponse {
  return {
    succeeded: w.succeeded,
    revision: w.revision,
    results: w.results.map((r): TxnOpResult => {
      if (r.put !== undefined) return r.put.prevKv ? { type: 'put', prevKv: kvFromWire(r.put.prevKv) } : { type: 'put' };
      if (r.delete !== undefined) {
        return r.delete.prevKvs
          ? { type: 'delete', deleted: r.delete.deleted, prevKvs: r.delete.prevKvs.map(kvFromWire) }
          : { type: 'delete', deleted: r.delete.deleted };
      }
      const range = r.range ?? { kvs: [], more: false, count: 0 };
      return { type: 'range', kvs: range.kvs.map(kvFromWire), more: range.more, count: range.count };
    }),
  };
}
