import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { logFormat, prettyLine } from './logger.js';

describe('logger', () => {
  it('turns a JSON record into one line for people: time, level, message, fields', () => {
    const t = new Date(2026, 11, 6, 12, 49, 9).getTime();
    const line = prettyLine(JSON.stringify({ level: 40, time: t, service: 'beacon', msg: 'request answered unavailable', route: '/v1/kv/*', note: 'two words' }));
    assert.equal(line, '12:49:09 WARN  request answered unavailable  route=/v1/kv/* note="two words"\n');
  });

  it('shows an error by its message, and passes a line that is not JSON through', () => {
    const line = prettyLine(JSON.stringify({ level: 50, time: 0, msg: 'request failed', err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at x' } }));
    assert.match(line, / ERROR request failed {2}err="boom"\n$/);
    assert.equal(prettyLine('not json'), 'not json\n');
  });

  it('follows BEACON_LOG_FORMAT, else whether stdout is a terminal', () => {
    const saved = process.env.BEACON_LOG_FORMAT;
    try {
      process.env.BEACON_LOG_FORMAT = 'json';
      assert.equal(logFormat(), 'json');
      process.env.BEACON_LOG_FORMAT = 'pretty';
      assert.equal(logFormat(), 'pretty');
      delete process.env.BEACON_LOG_FORMAT;
      assert.equal(logFormat(), process.stdout.isTTY === true ? 'pretty' : 'json');
    } finally {
      if (saved === undefined) delete process.env.BEACON_LOG_FORMAT;
      else process.env.BEACON_LOG_FORMAT = saved;
    }
  });
});
