import assert from "node:assert/strict";
import { test } from "node:test";

import { DeviceState, LocalStorageStore, MemoryStore, type Store, type WebStorage } from "../src/store.js";

// A Web Storage stand-in with localStorage's semantics (strings, key(i)).
class FakeWebStorage implements WebStorage {
  private m = new Map<string, string>();
  get length() {
    return this.m.size;
  }
  key(i: number) {
    return [...this.m.keys()][i] ?? null;
  }
  getItem(k: string) {
    return this.m.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.m.set(k, String(v));
  }
  removeItem(k: string) {
    this.m.delete(k);
  }
}

// One suite for every Store implementation.
for (const [name, make] of [
  ["MemoryStore", () => new MemoryStore()],
  ["LocalStorageStore", () => new LocalStorageStore(new FakeWebStorage())],
] as [string, () => Store][]) {
  test(`${name}: positions, client_seq counters and outbox records round-trip per namespace`, () => {
    const store = make();
    const a = new DeviceState(store, "alice-phone");
    const b = new DeviceState(store, "alice-web");
    a.savePosition("g:t", 41);
    a.savePosition("dm:alice:bob", 7);
    a.saveClientSeq("g:t", 12);
    a.saveOutboxEntry("c-1", { conversationId: "g:t", clientMsgId: "c-1", clientSeq: 12 });
    assert.deepEqual([...a.positions()].sort(), [["dm:alice:bob", 7], ["g:t", 41]]);
    assert.equal(a.lastClientSeq("g:t"), 12);
    assert.equal(a.lastClientSeq("g:other"), 0);
    assert.deepEqual(a.outbox(), [{ conversationId: "g:t", clientMsgId: "c-1", clientSeq: 12 }]);
    assert.deepEqual([...b.positions()], [], "another device's namespace is apart");
    assert.equal(b.lastClientSeq("g:t"), 0);
    a.deleteOutboxEntry("c-1");
    assert.deepEqual(a.outbox(), []);
  });
}

test("LocalStorageStore needs a storage where the platform has none", () => {
  assert.throws(() => new LocalStorageStore(), /no localStorage/);
});
