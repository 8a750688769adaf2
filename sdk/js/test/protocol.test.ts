import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { decodeServerFrame, dmConversationId, encodeFrame, FrameDecodeError, isConversationId, isValidId } from "../src/protocol.js";

// The protocol document's examples, the same ones the Go schema test checks.
const protocolMd = fileURLToPath(new URL("../../../../schemas/wsprotocol/protocol.md", import.meta.url));
const examples = [...readFileSync(protocolMd, "utf8").matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]!) as { type: string });
const serverTypes = new Set(["welcome", "accepted", "rejected", "msg", "synced", "pong", "error", "receipt"]);
// `conversations` is both the client's request (no list) and the server's answer.
const isServer = (e: { type: string }) => serverTypes.has(e.type) || (e.type === "conversations" && "conversations" in e);

test("every server frame example of protocol.md decodes to itself", () => {
  const server = examples.filter(isServer);
  assert.ok(server.length >= 11, `found ${server.length} server examples`);
  for (const e of server) assert.deepEqual(decodeServerFrame(JSON.stringify(e)), e);
});

test("every client frame example of protocol.md encodes to the same JSON", () => {
  const client = examples.filter((e) => !isServer(e));
  assert.ok(client.length >= 9, `found ${client.length} client examples`);
  for (const e of client) assert.deepEqual(JSON.parse(encodeFrame(e as never)), e);
});

test("malformed server frames are refused whole", () => {
  const msg = {
    type: "msg", conversation_id: "g:t", seq: 1, msg_id: "m", sender_user_id: "a", sender_device_id: "d",
    sequenced_at_ms: 0, message: { content_type: "text/plain", body: "x" },
  };
  const bad: [string, unknown][] = [
    ["not JSON", "{"],
    ["an array", []],
    ["no type", { conversation_id: "g:t" }],
    ["unknown type", { type: "shout" }],
    ["prototype key as type", { type: "toString" }],
    ["seq zero", { ...msg, seq: 0 }],
    ["receipt without user", { type: "receipt", conversation_id: "g:t", seq: 3 }],
    ["receipt of seq 0", { type: "receipt", conversation_id: "g:t", user_id: "a", seq: 0 }],
    ["conversations without unread", { type: "conversations", conversations: [{ conversation_id: "g:t", last_seq: 1, read_seq: 0 }] }],
    ["conversations request as an answer", { type: "conversations" }],
    ["seq not an integer", { ...msg, seq: 1.5 }],
    ["seq a string", { ...msg, seq: "1" }],
    ["both message and event", { ...msg, event: { kind: "joined", user_ids: ["a"] } }],
    ["neither message nor event", { ...msg, message: undefined }],
    ["event of unknown kind", { ...msg, message: undefined, event: { kind: "banned", user_ids: [] } }],
    ["revision with an event", { ...msg, message: undefined, revision: { op: "recall", target_seq: 1 }, event: { kind: "joined", user_ids: ["a"] } }],
    ["revision of an unknown op", { ...msg, message: undefined, revision: { op: "undo", target_seq: 1 } }],
    ["revision of seq 0", { ...msg, message: undefined, revision: { op: "recall", target_seq: 0 } }],
    ["no body and not recalled", { ...msg, message: undefined, recalled: false }],
    ["error without fatal", { type: "error", code: "internal", message: "x" }],
    ["error of unknown code", { type: "error", code: "oops", message: "x", fatal: false }],
    ["rejected without code", { type: "rejected", conversation_id: "g:t", client_msg_id: "c", message: "x" }],
    ["synced without complete", { type: "synced", conversation_id: "g:t", up_to_seq: 3 }],
    ["accepted with seq 0", { type: "accepted", conversation_id: "g:t", client_msg_id: "c", seq: 0 }],
  ];
  for (const [what, v] of bad) {
    const text = typeof v === "string" ? v : JSON.stringify(v);
    assert.throws(() => decodeServerFrame(text), FrameDecodeError, what);
  }
});

test("ids and conversation ids follow the schema", () => {
  assert.equal(dmConversationId("bob", "alice"), "dm:alice:bob");
  assert.ok(isConversationId("g:team") && isConversationId("dm:alice:bob"));
  assert.ok(!isConversationId("team") && !isConversationId("g:") && !isConversationId("dm:a"));
  assert.ok(isValidId("c-7f3a") && !isValidId("has space") && !isValidId("x".repeat(129)));
});
