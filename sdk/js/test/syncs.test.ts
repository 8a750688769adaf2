import assert from "node:assert/strict";
import { test } from "node:test";

import type { SeqchatError } from "../src/errors.js";
import type { MsgFrame, SyncFrame } from "../src/protocol.js";
import { SyncQueue } from "../src/syncs.js";
import { FakeClock } from "./fakes.js";

const msg = (conv: string, seq: number): MsgFrame => ({
  type: "msg", conversation_id: conv, seq, msg_id: `m${seq}`, sender_user_id: "a", sender_device_id: "d",
  sequenced_at_ms: 0, message: { content_type: "text/plain", body: String(seq) },
});

function queue() {
  const clock = new FakeClock();
  const written: SyncFrame[] = [];
  const q = new SyncQueue({ clock, timeoutMs: 1000, write: (f) => (written.push(f), true) });
  return { clock, written, q };
}

test("one request in flight; the next goes when the first is answered", async () => {
  const { written, q } = queue();
  q.connectionOpen();
  const a = q.request("g:a", 0, 50);
  const b = q.request("g:b", 5, 5000);
  assert.deepEqual(written, [{ type: "sync", conversation_id: "g:a", after_seq: 0, limit: 50 }]);
  q.onMsg(msg("g:a", 1));
  q.onMsg(msg("g:b", 9)); // another conversation's live entry: not part of the answer
  q.onMsg(msg("g:a", 2));
  q.onSynced({ type: "synced", conversation_id: "g:a", up_to_seq: 2, complete: true });
  const ra = await a;
  assert.deepEqual(ra.entries.map((e) => e.seq), [1, 2]);
  assert.equal(ra.complete, true);
  assert.deepEqual(written[1], { type: "sync", conversation_id: "g:b", after_seq: 5, limit: 1000 }, "limit capped at 1000");
  q.onSynced({ type: "synced", conversation_id: "g:b", up_to_seq: 5, complete: false });
  assert.deepEqual((await b).entries, [], "nothing newer yet");
});

test("the gateway's own synced (catch-up) does not end a request", async () => {
  const { q } = queue();
  q.connectionOpen();
  const a = q.request("g:a", 10, 100);
  q.onSynced({ type: "synced", conversation_id: "g:a", up_to_seq: 40, complete: true }); // seq 40 not received for it
  let done = false;
  void a.then(() => (done = true));
  await Promise.resolve();
  assert.equal(done, false);
  q.onMsg(msg("g:a", 11));
  q.onMsg(msg("g:a", 14)); // 12, 13: not visible to the user
  q.onSynced({ type: "synced", conversation_id: "g:a", up_to_seq: 14, complete: false });
  assert.deepEqual((await a).entries.map((e) => e.seq), [11, 14]);
});

test("a sync error names the conversation and fails the request", async () => {
  const { q } = queue();
  q.connectionOpen();
  const a = q.request("g:a", 0, 10);
  assert.equal(q.onError({ type: "error", code: "not_member", message: "sync g:other: not a member", fatal: false }), false);
  assert.equal(q.onError({ type: "error", code: "not_member", message: "alice is not a member of g:a", fatal: false }), false, "the catch-up's, not the sync's");
  assert.equal(q.onError({ type: "error", code: "not_member", message: "sync g:a: not a member", fatal: false }), true);
  await assert.rejects(a, (e: SeqchatError) => e.code === "not_member" && e.conversationId === "g:a");
});

test("an unanswered request times out on the clock, and a lost connection sends it again", async () => {
  const { clock, written, q } = queue();
  const a = q.request("g:a", 0, 10);
  assert.equal(written.length, 0, "no connection, nothing written");
  q.connectionOpen();
  assert.equal(written.length, 1);
  q.connectionLost();
  q.connectionOpen();
  assert.equal(written.length, 2, "written again on the new connection");
  clock.advance(999);
  clock.advance(1);
  await assert.rejects(a, (e: SeqchatError) => e.code === "sync_timeout");
});
