import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ws from 'ws';
import { textFrame } from './ws-channel.js';

/** ws's own framing (exported at run time, not in its type declarations). */
const Sender = (ws as unknown as { Sender: { frame(data: Buffer, o: Record<string, unknown>): Buffer[] } }).Sender;

/** The same text framed by `ws` itself (a server's frame: final, text, unmasked). */
function wsFrame(text: string): Buffer {
  const list = Sender.frame(Buffer.from(text), { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false });
  return Buffer.concat(list);
}

test('a prepared text frame has the bytes ws would send, at every length encoding', () => {
  for (const len of [0, 1, 125, 126, 127, 65535, 65536, 70_000]) {
    const text = 'é'.repeat(Math.floor(len / 2)) + 'x'.repeat(len % 2);
    assert.deepEqual(textFrame(text), wsFrame(text), `length ${len}`);
  }
});

test('the same text twice gives the same frame; a different text a new one', () => {
  const a = textFrame('{"type":"events","watchId":1}');
  assert.equal(textFrame('{"type":"events","watchId":1}'), a);
  const b = textFrame('{"type":"events","watchId":2}');
  assert.notEqual(b, a);
  assert.equal(b.subarray(2).toString(), '{"type":"events","watchId":2}');
});
