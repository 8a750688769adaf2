import assert from "node:assert/strict";
import { test } from "node:test";

import { SeqchatError } from "../src/errors.js";
import { Outbox, type Settlement } from "../src/outbox.js";
import type { SendFrame } from "../src/protocol.js";
import { DeviceState, MemoryStore } from "../src/store.js";
import { FakeClock, seeded } from "./fakes.js";

function outbox(store = new MemoryStore(), clock = new FakeClock(), random = seeded(1)) {
  return { store, clock, ob: new Outbox({ state: new DeviceState(store, "t"), clock, random }) };
}
const text = (body: string) => ({ message: { content_type: "text/plain", body } });

// The gateway's send-order rule (pipeline/gateway/sendorder.go), per
// connection: after a refusal, a later send of the conversation is refused
// until every refused one before it has been resent.
class SendOrderModel {
  private refused = new Map<string, { cs: number; resent: boolean }[]>();
  private accepted = new Map<string, number>();
  admit(conv: string, cs: number): boolean {
    const r = this.refused.get(conv) ?? [];
    if (r.length === 0 || cs < r[0]!.cs) return true;
    for (const x of r) {
      if (x.cs === cs) {
        x.resent = true;
        return true;
      }
      if (x.cs > cs) return true;
      if (!x.resent) {
        this.record(conv, cs);
        return false;
      }
    }
    return true;
  }
  failed(conv: string, cs: number): void {
    const x = (this.refused.get(conv) ?? []).find((y) => y.cs === cs);
    if (x) x.resent = false;
    else if (cs > (this.accepted.get(conv) ?? 0)) this.record(conv, cs);
  }
  accept(conv: string, cs: number): void {
    const rest = (this.refused.get(conv) ?? []).filter((y) => y.cs !== cs);
    if (rest.length) this.refused.set(conv, rest);
    else this.refused.delete(conv);
    this.accepted.set(conv, Math.max(cs, this.accepted.get(conv) ?? 0));
  }
  private record(conv: string, cs: number): void {
    const r = this.refused.get(conv) ?? [];
    if (!r.some((y) => y.cs === cs)) r.push({ cs, resent: false });
    r.sort((a, b) => a.cs - b.cs);
    this.refused.set(conv, r);
  }
}

type Answer =
  | { kind: "accepted"; cmid: string; seq?: number }
  | { kind: "msg"; cmid: string; seq: number }
  | { kind: "refused"; cmid: string; code: "unavailable" | "rate_limited"; hint?: number };

test("sends refused behind a refused one go again with it, adding no backoff of their own", () => {
  const { clock, ob } = outbox();
  for (const cmid of ["a", "b", "c"]) ob.add("g:a", text(cmid), cmid);
  for (let round = 1; round <= 6; round++) {
    const written = ob.due(clock.now()).map((f) => f.client_msg_id);
    assert.deepEqual(written, ["a", "b", "c"], `round ${round}`);
    ob.refused("a", "unavailable", 100, clock.now()); // the gateway's answers, in order
    ob.refused("b", "unavailable", undefined, clock.now());
    ob.refused("c", "unavailable", undefined, clock.now());
    clock.advance(ob.nextRetryAt()! - clock.now());
  }
});

test("under random refusals and reconnects every send settles once with the seq it was given, in client_seq order", () => {
  for (let seed = 1; seed <= 60; seed++) {
    const rnd = seeded(seed);
    const { clock, ob } = outbox(new MemoryStore(), new FakeClock(), seeded(seed + 1000));
    let order = new SendOrderModel();
    let answers: Answer[] = [];
    const seqOf = new Map<string, number>(); // the sequencer's dedup: one seq per client_msg_id
    const nextSeq = new Map<string, number>();
    const firstSeqByClientSeq = new Map<string, [number, number][]>(); // conv -> [client_seq, seq]
    const settled = new Map<string, Settlement>();
    const notBefore = new Map<string, number>(); // cmid -> earliest allowed rewrite
    const convOf = new Map<string, string>();
    const total = 150;
    let made = 0;

    const gatewayTakes = (f: SendFrame) => {
      const cmid = f.client_msg_id;
      assert.ok(!settled.has(cmid), `seed ${seed}: ${cmid} written after it settled`);
      assert.ok(clock.now() >= (notBefore.get(cmid) ?? 0), `seed ${seed}: ${cmid} rewritten before its retry hint`);
      if (!order.admit(f.conversation_id, f.client_seq)) {
        answers.push({ kind: "refused", cmid, code: "unavailable" });
      } else if (rnd() < 0.25) {
        order.failed(f.conversation_id, f.client_seq);
        const code = rnd() < 0.5 ? "rate_limited" : "unavailable";
        const hint = rnd() < 0.7 ? 1 + Math.floor(rnd() * 800) : undefined;
        answers.push({ kind: "refused", cmid, code, ...(hint ? { hint } : {}) });
      } else {
        order.accept(f.conversation_id, f.client_seq);
        answers.push({ kind: "accepted", cmid });
        const known = seqOf.get(cmid);
        if (known !== undefined) {
          answers.push({ kind: "accepted", cmid, seq: known }); // the duplicate's notice
        } else {
          const seq = (nextSeq.get(f.conversation_id) ?? 0) + 1;
          nextSeq.set(f.conversation_id, seq);
          seqOf.set(cmid, seq);
          const l = firstSeqByClientSeq.get(f.conversation_id) ?? [];
          l.push([f.client_seq, seq]);
          firstSeqByClientSeq.set(f.conversation_id, l);
          answers.push({ kind: "msg", cmid, seq });
        }
      }
    };
    const clientTakes = (a: Answer) => {
      let st: Settlement | undefined;
      if (a.kind === "accepted") st = ob.accepted(a.cmid, a.seq);
      else if (a.kind === "msg") st = ob.sequenced(a.cmid, a.seq);
      else {
        ob.refused(a.cmid, a.code, a.hint, clock.now());
        if (a.hint !== undefined && ob.get(a.cmid)?.state === "refused") notBefore.set(a.cmid, clock.now() + a.hint);
      }
      if (st) {
        assert.ok(!settled.has(st.send.clientMsgId), `seed ${seed}: settled twice`);
        settled.set(st.send.clientMsgId, st);
      }
    };

    for (let step = 0; step < 20_000 && settled.size < total; step++) {
      if (made < total && rnd() < 0.3) {
        const conv = `g:c${Math.floor(rnd() * 3)}`;
        const cmid = `m${made++}`;
        convOf.set(cmid, conv);
        ob.add(conv, text(cmid), cmid);
      }
      for (const f of ob.due(clock.now())) gatewayTakes(f);
      for (let k = Math.floor(rnd() * 4); k > 0 && answers.length; k--) clientTakes(answers.shift()!);
      if (rnd() < 0.02) {
        // The connection drops: unanswered frames are lost, the new
        // connection's send order starts empty.
        answers = [];
        order = new SendOrderModel();
        ob.connectionLost();
      }
      clock.advance(Math.floor(rnd() * 120));
    }

    assert.equal(settled.size, total, `seed ${seed}: ${total - settled.size} sends never settled`);
    assert.equal(ob.size, 0);
    for (const [cmid, st] of settled) {
      assert.equal(st.kind, "sequenced");
      assert.equal(st.kind === "sequenced" && st.seq, seqOf.get(cmid), `seed ${seed}: ${cmid} settled with another seq`);
      assert.equal(st.send.conversationId, convOf.get(cmid));
    }
    for (const [conv, pairs] of firstSeqByClientSeq) {
      const bySeq = [...pairs].sort((a, b) => a[1] - b[1]).map((p) => p[0]);
      assert.deepEqual(bySeq, [...bySeq].sort((a, b) => a - b), `seed ${seed}: ${conv}: seqs out of client_seq order (I2)`);
    }
  }
});

test("client_seq counts per conversation and survives a new instance on the same store", () => {
  const store = new MemoryStore();
  const clock = new FakeClock();
  const a = outbox(store, clock).ob;
  assert.equal(a.add("g:x", text("1"), "x1").clientSeq, 1);
  clock.advance(1);
  assert.equal(a.add("g:x", text("2"), "x2").clientSeq, 2);
  clock.advance(1);
  assert.equal(a.add("g:y", text("1"), "y1").clientSeq, 1);
  a.due(0);
  a.sequenced("x1", 10);

  const b = outbox(store).ob; // a page reload
  assert.deepEqual(b.pending().map((s) => [s.clientMsgId, s.clientSeq, s.state]), [
    ["x2", 2, "queued"],
    ["y1", 1, "queued"],
  ]);
  assert.equal(b.add("g:x", text("3"), "x3").clientSeq, 3, "the counter went on, not back to 1");
  assert.deepEqual(b.due(0).map((f) => f.client_msg_id), ["x2", "x3", "y1"]);
});

test("a refused send holds back the later ones of its conversation only", () => {
  const { clock, ob } = outbox();
  for (const id of ["a1", "a2", "a3"]) ob.add("g:a", text(id), id);
  ob.add("g:b", text("b1"), "b1");
  assert.deepEqual(ob.due(clock.now()).map((f) => f.client_msg_id), ["a1", "a2", "a3", "b1"]);
  ob.accepted("a1", undefined);
  ob.refused("a2", "rate_limited", 300, clock.now());
  ob.refused("a3", "unavailable", undefined, clock.now());
  ob.add("g:a", text("a4"), "a4");
  ob.add("g:b", text("b2"), "b2");
  assert.deepEqual(ob.due(clock.now()).map((f) => f.client_msg_id), ["b2"], "g:a waits behind a2");
  const at = ob.nextRetryAt()!;
  assert.ok(at >= clock.now() + 300 && at <= clock.now() + 300 + 151, `retry at +${at - clock.now()}`);
  clock.advance(at - clock.now());
  const next = ob.due(clock.now()).map((f) => f.client_msg_id);
  assert.equal(next[0], "a2", "the earliest refused goes first");
  if (next.includes("a3")) assert.deepEqual(next, ["a2", "a3", "a4"], "then the rest, in client_seq order");
  else assert.deepEqual(next, ["a2"], "a3's own wait holds a4 behind it");
});

test("accepted without seq waits for the msg or a rejection; with seq it is done", () => {
  const { ob } = outbox();
  ob.add("g:a", text("a"), "a");
  ob.add("g:a", text("b"), "b");
  ob.add("g:a", text("c"), "c");
  ob.due(0);
  assert.equal(ob.accepted("a", undefined), undefined, "the broker's acknowledgement: the msg follows");
  assert.equal(ob.get("a")?.state, "accepted");
  const st = ob.sequenced("a", 7);
  assert.equal(st?.kind === "sequenced" && st.seq, 7, "its msg settles it");
  const dup = ob.accepted("b", 5); // a repeat whose original seq the gateway knew
  assert.equal(dup?.kind === "sequenced" && dup.seq, 5);
  ob.accepted("c", undefined);
  const late = ob.rejected("c", new SeqchatError("not_member", "the sequencer refused it"));
  assert.equal(late?.kind, "rejected", "a rejection may follow accepted");
  assert.equal(ob.size, 0);
});

test("a rejection settles the send and removes it from the store", () => {
  const store = new MemoryStore();
  const { ob } = outbox(store);
  ob.add("g:a", text("x"), "x");
  ob.due(0);
  const st = ob.rejected("x", new SeqchatError("not_member", "no"));
  assert.equal(st?.kind, "rejected");
  assert.equal(st?.kind === "rejected" && st.error.code, "not_member");
  assert.deepEqual(store.keys("t/out/"), []);
});

test("a lost connection writes again whatever it left unsettled, accepted included", () => {
  const { ob } = outbox();
  for (const id of ["a", "b", "c"]) ob.add("g:a", text(id), id);
  ob.due(0);
  ob.accepted("a", undefined);
  ob.sequenced("b", 1);
  ob.connectionLost();
  assert.deepEqual(ob.due(0).map((f) => f.client_msg_id), ["a", "c"]);
  assert.deepEqual(ob.due(0), [], "written once per connection");
});

test("refusals in a row wait longer, up to the cap, with jitter of at most half", () => {
  const { clock, ob } = outbox(new MemoryStore(), new FakeClock(), seeded(3));
  ob.add("g:a", text("x"), "x");
  let prev = 0;
  for (let i = 0; i < 8; i++) {
    ob.due(clock.now());
    ob.refused("x", "unavailable", undefined, clock.now());
    const wait = ob.nextRetryAt()! - clock.now();
    const base = i === 0 ? 500 : Math.min(500 * 2 ** Math.min(i - 1, 4), 5000);
    assert.ok(wait >= base && wait <= base * 1.5 + 1, `refusal ${i + 1}: waited ${wait}, base ${base}`);
    assert.ok(base >= prev);
    prev = base;
    clock.advance(wait);
  }
});

test("the next retry time is the head of the line's, not a send waiting behind it", () => {
  const { clock, ob } = outbox();
  ob.add("g:a", text("a1"), "a1");
  ob.add("g:a", text("a2"), "a2");
  ob.due(clock.now());
  ob.refused("a1", "unavailable", 2000, clock.now());
  ob.refused("a2", "unavailable", 10, clock.now()); // its own time comes first
  const at = ob.nextRetryAt()!;
  assert.ok(at >= clock.now() + 2000, `woke at +${at - clock.now()}, before a1 may go`);
  clock.advance(at - clock.now());
  assert.deepEqual(ob.due(clock.now()).map((f) => f.client_msg_id), ["a1", "a2"]);
});

test("edits and recalls are written as revisions and survive a reload", () => {
  const store = new MemoryStore();
  const a = outbox(store).ob;
  a.add("g:x", text("hi"), "m1");
  a.add("g:x", { revision: { op: "edit", target_seq: 7 }, ...text("hi!") }, "e1");
  a.add("g:x", { revision: { op: "recall", target_seq: 7 } }, "r1");
  const b = outbox(store).ob; // a page reload
  assert.deepEqual(b.due(0), [
    { type: "send", conversation_id: "g:x", client_msg_id: "m1", client_seq: 1, message: { content_type: "text/plain", body: "hi" } },
    { type: "send", conversation_id: "g:x", client_msg_id: "e1", client_seq: 2, revision: { op: "edit", target_seq: 7 },
      message: { content_type: "text/plain", body: "hi!" } },
    { type: "send", conversation_id: "g:x", client_msg_id: "r1", client_seq: 3, revision: { op: "recall", target_seq: 7 } },
  ]);
});

test("a send whose entry comes while the connection owes it an answer is written again if that connection refuses it, before the sends behind it", () => {
  const { ob, clock } = outbox();
  const a1 = ob.add("g:t", text("one"), "a1");
  ob.add("g:t", text("two"), "a2");
  assert.deepEqual(ob.due(clock.now()).map((f) => f.client_msg_id), ["a1", "a2"]);
  // a1 was accepted on an earlier connection: its entry comes by catch-up.
  const st = ob.sequenced("a1", 7);
  assert.equal(st?.kind, "sequenced");
  assert.deepEqual(ob.pending("g:t").map((s) => s.clientMsgId), ["a2"], "settled for the application");
  ob.refused("a1", "unavailable", 300, clock.now());
  ob.refused("a2", "unavailable", undefined, clock.now());
  assert.deepEqual(ob.due(clock.now()), [], "nothing before the refused one's time");
  clock.advance(1_000);
  assert.deepEqual(ob.due(clock.now()).map((f) => f.client_msg_id), ["a1", "a2"], "a1 again, then a2");
  ob.accepted("a1", 7);
  assert.deepEqual(ob.pending().map((s) => s.clientMsgId), ["a2"]);
  assert.equal(a1.clientMsgId, "a1");
  // A new connection owes nothing: a lingering send is dropped with the old one.
  ob.sequenced("a2", 8);
  ob.connectionLost();
  assert.deepEqual(ob.due(clock.now()), []);
  assert.equal(ob.size, 0);
});
