import assert from "node:assert/strict";
import { test } from "node:test";

import { AckBatcher } from "../src/acks.js";
import type { AckFrame } from "../src/protocol.js";
import { FakeClock, seeded } from "./fakes.js";

function batcher(opts: { connected?: () => boolean; maxPending?: number } = {}) {
  const clock = new FakeClock();
  const sent: AckFrame[][] = [];
  const persisted = new Map<string, number>();
  const b = new AckBatcher({
    clock,
    delayMs: 200,
    maxPending: opts.maxPending ?? 100,
    send: (frames) => {
      if (opts.connected && !opts.connected()) return false;
      sent.push(frames);
      return true;
    },
    persist: (p) => p.forEach((seq, conv) => persisted.set(conv, Math.max(seq, persisted.get(conv) ?? 0))),
  });
  return { clock, sent, persisted, b };
}

test("one cumulative ack per conversation after the delay", () => {
  const { clock, sent, persisted, b } = batcher();
  for (let s = 1; s <= 10; s++) b.delivered("g:a", s);
  b.delivered("g:b", 3);
  clock.advance(199);
  assert.equal(sent.length, 0, "nothing before the delay");
  clock.advance(1);
  assert.deepEqual(sent, [
    [
      { type: "ack", conversation_id: "g:a", seq: 10 },
      { type: "ack", conversation_id: "g:b", seq: 3 },
    ],
  ]);
  assert.deepEqual([...persisted], [["g:a", 10], ["g:b", 3]]);
  clock.advance(10_000);
  assert.equal(sent.length, 1, "nothing new, nothing sent");
});

test("acks never go backwards and never exceed what was delivered", () => {
  const rnd = seeded(7);
  const { clock, sent, b } = batcher({ maxPending: 5 });
  const delivered = new Map<string, number>();
  const lastAck = new Map<string, number>();
  for (let i = 0; i < 2000; i++) {
    const conv = `g:c${Math.floor(rnd() * 4)}`;
    const seq = (delivered.get(conv) ?? 0) + 1;
    delivered.set(conv, seq);
    b.delivered(conv, seq);
    if (rnd() < 0.1) clock.advance(Math.floor(rnd() * 300));
    for (const batch of sent.splice(0)) {
      for (const a of batch) {
        assert.ok(a.seq > (lastAck.get(a.conversation_id) ?? 0), "cumulative acks only grow");
        assert.ok(a.seq <= delivered.get(a.conversation_id)!, "never ahead of delivery");
        lastAck.set(a.conversation_id, a.seq);
      }
    }
  }
  b.flush();
  for (const batch of sent) for (const a of batch) lastAck.set(a.conversation_id, a.seq);
  assert.deepEqual(lastAck, delivered, "after a flush everything delivered is acknowledged");
});

test("a full batch goes at once", () => {
  const { sent, b } = batcher({ maxPending: 3 });
  b.delivered("g:a", 1);
  b.delivered("g:a", 2);
  assert.equal(sent.length, 0);
  b.delivered("g:a", 3);
  assert.deepEqual(sent, [[{ type: "ack", conversation_id: "g:a", seq: 3 }]]);
});

test("without a connection acks wait, positions are still persisted", () => {
  let up = false;
  const { clock, sent, persisted, b } = batcher({ connected: () => up });
  b.delivered("g:a", 5);
  clock.advance(200);
  assert.equal(sent.length, 0);
  assert.equal(persisted.get("g:a"), 5);
  up = true;
  b.delivered("g:a", 6);
  clock.advance(200);
  assert.deepEqual(sent, [[{ type: "ack", conversation_id: "g:a", seq: 6 }]]);
});

test("resumed drops unsent acks (hello's resume covers them) but persists them", () => {
  const { clock, sent, persisted, b } = batcher();
  b.delivered("g:a", 9);
  b.resumed();
  assert.equal(persisted.get("g:a"), 9);
  clock.advance(1000);
  assert.equal(sent.length, 0);
  assert.equal(clock.pending, 0, "no timer left behind");
});
