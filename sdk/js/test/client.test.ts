import assert from "node:assert/strict";
import { test } from "node:test";

import { SeqchatClient } from "../src/client.js";
import type { ChatEntry } from "../src/entries.js";
import type { SeqchatError } from "../src/errors.js";
import type { ClientFrame, MsgFrame, ServerFrame } from "../src/protocol.js";
import { MemoryStore } from "../src/store.js";
import type { WebSocketLike } from "../src/websocket.js";
import { FakeClock, seeded } from "./fakes.js";

// A fake socket for the client's wiring; the protocol behind it is played
// by each test. (The real gateway is in the integration tests.)
class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: ClientFrame[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(data: string): void {
    this.sent.push(JSON.parse(data) as ClientFrame);
  }
  close(): void {
    this.drop();
  }
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  deliver(f: ServerFrame): void {
    this.onmessage?.({ data: JSON.stringify(f) });
  }
  drop(): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code: 1006, reason: "" });
  }
  welcome(): void {
    this.open();
    this.deliver({ type: "welcome", user_id: "alice", device_id: "phone", gateway_id: "gw", max_frame_bytes: 65536 });
  }
  of<T extends ClientFrame["type"]>(type: T): Extract<ClientFrame, { type: T }>[] {
    return this.sent.filter((f) => f.type === type) as Extract<ClientFrame, { type: T }>[];
  }
}

const entry = (conv: string, seq: number, extra: Partial<MsgFrame> = {}): MsgFrame => ({
  type: "msg", conversation_id: conv, seq, msg_id: `m${seq}`, sender_user_id: "bob", sender_device_id: "web",
  sequenced_at_ms: seq, message: { content_type: "text/plain", body: `#${seq}` }, ...extra,
});

function setup(store = new MemoryStore()) {
  FakeSocket.all = [];
  const clock = new FakeClock();
  const c = new SeqchatClient({ urls: ["ws://a/ws", "ws://b/ws"], token: "tok", WebSocket: FakeSocket, store, clock, random: seeded(5) });
  const got: ChatEntry[] = [];
  c.on("message", (e) => got.push(e));
  const last = () => FakeSocket.all[FakeSocket.all.length - 1]!;
  return { clock, c, got, last, store };
}

test("a reconnect says hello with the delivered positions and resends unsettled sends in client_seq order", async () => {
  const { clock, c, got, last } = setup();
  const connected = c.connect();
  assert.equal(c.connect(), connected, "connect twice: one connection");
  assert.equal(FakeSocket.all.length, 1);
  last().welcome();
  await connected;
  assert.deepEqual(last().sent[0], { type: "hello", token: "tok", resume: {} });
  for (const s of [1, 2, 3]) last().deliver(entry("g:t", s));
  const h1 = c.send("g:t", "one");
  const h2 = c.send("g:t", "two");
  last().deliver({ type: "accepted", conversation_id: "g:t", client_msg_id: h1.clientMsgId });
  const first = last();
  first.drop();
  assert.equal(c.state, "reconnecting");
  clock.advance(10_000);
  assert.equal(FakeSocket.all.length, 2);
  assert.notEqual(last().url, first.url, "the next gateway");
  last().welcome();
  assert.deepEqual(last().sent[0], { type: "hello", token: "tok", resume: { "g:t": { seq: 3, epoch: 0 } } });
  assert.deepEqual(last().of("send").map((f) => [f.client_msg_id, f.client_seq]), [
    [h1.clientMsgId, 1],
    [h2.clientMsgId, 2],
  ]);
  // Its own entries come back: the pending sends settle with their seqs.
  last().deliver(entry("g:t", 4, { sender_user_id: "alice", sender_device_id: "phone", client_msg_id: h1.clientMsgId }));
  last().deliver(entry("g:t", 5, { sender_user_id: "alice", sender_device_id: "phone", client_msg_id: h2.clientMsgId }));
  assert.equal(await h1.done, 4);
  assert.equal(await h2.done, 5);
  assert.deepEqual(got.map((e) => [e.seq, e.own]), [[1, false], [2, false], [3, false], [4, true], [5, true]]);
  assert.deepEqual(c.pending(), []);
  c.close();
});

test("a hole is filled by a sync after the gap wait, and the held entries follow in order", () => {
  const { clock, c, got, last } = setup();
  void c.connect();
  last().welcome();
  last().deliver(entry("g:t", 1));
  last().deliver(entry("g:t", 4));
  last().deliver(entry("g:t", 5));
  assert.deepEqual(got.map((e) => e.seq), [1]);
  clock.advance(499);
  assert.deepEqual(last().of("sync"), []);
  clock.advance(1);
  assert.deepEqual(last().of("sync"), [{ type: "sync", conversation_id: "g:t", after_seq: 1, limit: 2 }]);
  last().deliver(entry("g:t", 2));
  last().deliver(entry("g:t", 3));
  last().deliver({ type: "synced", conversation_id: "g:t", up_to_seq: 3, complete: false });
  assert.deepEqual(got.map((e) => e.seq), [1, 2, 3, 4, 5]);
  clock.advance(200);
  assert.deepEqual(last().of("ack").at(-1), { type: "ack", conversation_id: "g:t", seq: 5 }, "one cumulative ack");
  c.close();
});

test("an entry re-adding this user after it left skips the seqs it may not see", () => {
  const { clock, c, got, last } = setup();
  void c.connect();
  last().welcome();
  last().deliver(entry("g:t", 1, { message: undefined, event: { kind: "created", user_ids: ["bob", "alice"] } }));
  last().deliver(entry("g:t", 2, { message: undefined, event: { kind: "left", user_ids: ["alice"] } }));
  last().deliver(entry("g:t", 7, { message: undefined, event: { kind: "joined", user_ids: ["alice"] } }));
  last().deliver(entry("g:t", 8));
  assert.deepEqual(got.map((e) => e.seq), [1, 2, 7, 8]);
  clock.advance(5000);
  assert.deepEqual(last().of("sync"), [], "no gap to fill");
  c.close();
});

test("rejected sends fail with the protocol's code; refused ones wait for the hint", async () => {
  const { clock, c, last } = setup();
  void c.connect();
  last().welcome();
  const bad = c.send("g:t", "x");
  last().deliver({ type: "rejected", conversation_id: "g:t", client_msg_id: bad.clientMsgId, code: "not_member", message: "no" });
  await assert.rejects(bad.done, (e: SeqchatError) => e.code === "not_member" && e.ref === bad.clientMsgId);
  const slow = c.send("g:t", "y");
  const behind = c.send("g:t", "z");
  last().deliver({ type: "error", code: "unavailable", message: "behind", fatal: false, ref: slow.clientMsgId, retry_after_ms: 640 });
  last().deliver({ type: "error", code: "unavailable", message: "order", fatal: false, ref: behind.clientMsgId });
  const writes = () => last().of("send").filter((f) => f.client_msg_id !== bad.clientMsgId).map((f) => f.client_msg_id);
  assert.deepEqual(writes(), [slow.clientMsgId, behind.clientMsgId]);
  clock.advance(639);
  assert.equal(writes().length, 2, "not before retry_after_ms");
  clock.advance(640 / 2 + 1);
  assert.deepEqual(writes(), [slow.clientMsgId, behind.clientMsgId, slow.clientMsgId, behind.clientMsgId], "resent, earliest first");
  c.close();
});

test("a fatal token error with a fixed token stops reconnecting", async () => {
  const { clock, c, last } = setup();
  const connected = c.connect();
  last().open();
  last().deliver({ type: "error", code: "token_expired", message: "expired", fatal: true });
  last().drop();
  await assert.rejects(connected, (e: SeqchatError) => e.code === "token_expired");
  clock.advance(60_000);
  assert.equal(FakeSocket.all.length, 1);
  assert.equal(c.state, "closed");
});

test("a history page that starts ahead of the delivered position skips nothing", async () => {
  const { clock, c, got, last } = setup();
  void c.connect();
  last().welcome();
  last().deliver(entry("g:t", 1));
  const page = c.history("g:t", 10, 5);
  assert.deepEqual(last().of("sync"), [{ type: "sync", conversation_id: "g:t", after_seq: 10, limit: 5 }]);
  last().deliver(entry("g:t", 11));
  last().deliver(entry("g:t", 12));
  last().deliver({ type: "synced", conversation_id: "g:t", up_to_seq: 12, complete: true });
  assert.deepEqual((await page).entries.map((e) => e.seq), [11, 12]);
  assert.deepEqual(got.map((e) => e.seq), [1], "2..10 are not skipped: they are unseen, not invisible");
  clock.advance(500);
  assert.deepEqual(last().of("sync").at(-1), { type: "sync", conversation_id: "g:t", after_seq: 1, limit: 9 }, "the hole (2..10) is filled");
  c.close();
});

test("a connection silent for two ping intervals is given up and redialed", () => {
  FakeSocket.all = [];
  const clock = new FakeClock();
  const c = new SeqchatClient({ urls: ["ws://a/ws"], token: "tok", WebSocket: FakeSocket, clock, random: seeded(9), pingIntervalMs: 1000 });
  void c.connect();
  const first = FakeSocket.all[0]!;
  first.welcome();
  clock.advance(1000);
  assert.deepEqual(first.of("ping"), [{ type: "ping", id: "k1" }]);
  first.deliver({ type: "pong", id: "k1" });
  clock.advance(1000);
  assert.equal(first.of("ping").length, 2, "answered: still pinging");
  assert.equal(FakeSocket.all.length, 1);
  clock.advance(1000); // two intervals since the pong
  assert.equal(first.readyState, 3, "closed");
  clock.advance(200); // the reconnect backoff
  assert.equal(FakeSocket.all.length, 2, "redialed");
  c.close();
});

test("entries a full buffer dropped are fetched again by sync, even with nothing after them", () => {
  FakeSocket.all = [];
  const clock = new FakeClock();
  const c = new SeqchatClient({ urls: ["ws://a/ws"], token: "tok", WebSocket: FakeSocket, clock, random: seeded(9), maxHeld: 2 });
  const got: number[] = [];
  c.on("message", (e) => got.push(e.seq));
  void c.connect();
  const ws = FakeSocket.all[0]!;
  ws.welcome();
  for (const s of [1, 3, 4, 5, 6]) ws.deliver(entry("g:t", s)); // 5 and 6 do not fit behind the hole at 2
  clock.advance(500);
  assert.deepEqual(ws.of("sync").at(-1), { type: "sync", conversation_id: "g:t", after_seq: 1, limit: 1 });
  ws.deliver(entry("g:t", 2));
  ws.deliver({ type: "synced", conversation_id: "g:t", up_to_seq: 2, complete: false });
  assert.deepEqual(got, [1, 2, 3, 4]);
  clock.advance(500);
  assert.deepEqual(ws.of("sync").at(-1), { type: "sync", conversation_id: "g:t", after_seq: 4, limit: 2 }, "the dropped ones");
  ws.deliver(entry("g:t", 5));
  ws.deliver(entry("g:t", 6));
  ws.deliver({ type: "synced", conversation_id: "g:t", up_to_seq: 6, complete: true });
  assert.deepEqual(got, [1, 2, 3, 4, 5, 6]);
  clock.advance(5000);
  assert.equal(ws.of("sync").length, 2, "nothing more to fetch");
  c.close();
});

test("read marks: the highest per conversation, written when connected; receipts and the conversation list", async () => {
  const { c, clock, last } = setup();
  const receipts: { conversationId: string; userId: string; seq: number }[] = [];
  c.on("receipt", (r) => receipts.push(r));
  c.markRead("dm:alice:bob", 3);
  c.markRead("dm:alice:bob", 5);
  c.markRead("dm:alice:bob", 4);
  assert.throws(() => c.markRead("g:t", 0));
  const list = c.conversations(); // asked before the connection: sent on welcome
  const connected = c.connect();
  last().welcome();
  await connected;
  assert.deepEqual(last().of("read"), [{ type: "read", conversation_id: "dm:alice:bob", seq: 5 }]);
  assert.deepEqual(last().of("conversations"), [{ type: "conversations" }]);
  c.markRead("g:t", 7);
  assert.deepEqual(last().of("read").at(-1), { type: "read", conversation_id: "g:t", seq: 7 });

  const states = [{ conversation_id: "dm:alice:bob", last_seq: 9, read_seq: 5, unread: 2 }];
  last().deliver({ type: "conversations", conversations: states });
  assert.deepEqual(await list, states);
  last().deliver({ type: "receipt", conversation_id: "dm:alice:bob", user_id: "bob", seq: 9 });
  assert.deepEqual(receipts, [{ conversationId: "dm:alice:bob", userId: "bob", seq: 9 }]);

  const failed = c.conversations();
  last().deliver({ type: "error", code: "unavailable", message: "conversations: history did not answer; retry", fatal: false });
  await assert.rejects(failed, (e: SeqchatError) => e.code === "unavailable");

  // A request lost with its connection is asked again on the next one.
  const again = c.conversations();
  const first = last();
  first.drop();
  clock.advance(10_000);
  assert.notEqual(last(), first, "redialled");
  last().welcome();
  assert.deepEqual(last().of("conversations"), [{ type: "conversations" }]);
  last().deliver({ type: "conversations", conversations: [] });
  assert.deepEqual(await again, []);
  const pending = c.conversations();
  c.close();
  await assert.rejects(pending, (e: SeqchatError) => e.code === "client_closed");
});

test("a reset, or an entry of a newer epoch, drops the conversation's state and it starts again from seq 1", () => {
  const store = new MemoryStore();
  const { clock, c, got, last } = setup(store);
  const resets: { conversationId: string; epoch: number }[] = [];
  c.on("reset", (r) => resets.push({ conversationId: r.conversationId, epoch: r.epoch }));
  void c.connect();
  last().welcome();
  for (const s of [1, 2, 3]) last().deliver(entry("g:t", s, { epoch: 100 }));
  last().deliver(entry("g:t", 5, { epoch: 100 })); // held behind a hole
  clock.advance(200);
  assert.deepEqual(last().of("ack").at(-1), { type: "ack", conversation_id: "g:t", seq: 3 });

  // The stream was rebuilt: reset, then seq 1 of epoch 200; the held seq 5
  // of epoch 100 must never come out, nor an entry of epoch 100 after it.
  last().deliver({ type: "reset", conversation_id: "g:t", epoch: 200, message: "rebuilt" });
  assert.deepEqual(resets, [{ conversationId: "g:t", epoch: 200 }]);
  last().deliver(entry("g:t", 4, { epoch: 100 }));
  last().deliver(entry("g:t", 1, { epoch: 200 }));
  last().deliver(entry("g:t", 2, { epoch: 200 }));
  assert.deepEqual(got.map((e) => e.seq), [1, 2, 3, 1, 2]);
  clock.advance(200);
  assert.deepEqual(last().of("ack").at(-1), { type: "ack", conversation_id: "g:t", seq: 2 });

  // An entry of a newer epoch with no reset before it means the same.
  last().deliver(entry("g:t", 1, { epoch: 300 }));
  assert.deepEqual(resets.map((r) => r.epoch), [200, 300]);
  assert.deepEqual(got.map((e) => e.seq), [1, 2, 3, 1, 2, 1]);
  clock.advance(200);

  // The position is kept with its epoch: a reconnect resumes at seq 1 of 300.
  last().drop();
  clock.advance(10_000);
  last().welcome();
  assert.deepEqual(last().sent[0], { type: "hello", token: "tok", resume: { "g:t": { seq: 1, epoch: 300 } } });
  c.close();
  const again = setup(store);
  void again.c.connect();
  again.last().welcome();
  assert.deepEqual(again.last().sent[0], { type: "hello", token: "tok", resume: { "g:t": { seq: 1, epoch: 300 } } });
  again.c.close();
});
