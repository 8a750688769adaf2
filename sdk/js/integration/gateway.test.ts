// The SDK against the real gateways of the in-process pipeline
// (pipeline/gateway/sdk_test.go starts them and sets the environment).

import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { test } from "node:test";

import { WebSocket, WebSocketServer } from "ws";

import { DeviceState, MemoryStore } from "../src/index.js";
import { assertOrdered, gateways, newClient, range, run, slowGateway, waitFor, type TestClient } from "./support.js";

/** alice/phone creates conv with members; resolves once all of them have its first entry. */
async function group(conv: string, alice: TestClient, members: TestClient[]): Promise<void> {
  const users = members.map((m) => m.client.identity!.user).filter((u) => u !== "alice");
  await alice.client.createGroup(conv, conv, users).done;
  await waitFor(`${conv} created at every member`, [alice, ...members].map((c) => c.client), () =>
    [alice, ...members].every((c) => c.seqs(conv).length >= 1),
  );
}

test("a reconnect mid-stream resumes with no gap and no duplicate", async () => {
  const conv = `g:resume-${run}`;
  const alice = newClient("alice/phone");
  const bob = newClient("bob/phone");
  try {
    await Promise.all([alice.client.connect(), bob.client.connect()]);
    await group(conv, alice, [bob]);
    const seqs: (number | undefined)[] = [];
    for (const i of range(1, 10)) seqs.push(await alice.client.send(conv, `before ${i}`).done);
    await waitFor("11 entries at bob", [bob.client], () => bob.seqs(conv).length === 11);
    // The network goes; the stream goes on while bob is away, and after.
    const back = new Promise<void>((resolve) => bob.client.on("welcome", () => resolve()));
    bob.log.current.terminate();
    const away = range(1, 20).map((i) => alice.client.send(conv, `away ${i}`));
    await back;
    const after = range(1, 10).map((i) => alice.client.send(conv, `after ${i}`));
    for (const s of [...away, ...after]) seqs.push(await s.done);
    assert.deepEqual(seqs, range(2, 41), "alice's sends took seqs in her order");
    await waitFor("41 entries at bob", [bob.client], () => bob.seqs(conv).length >= 41);
    assert.deepEqual(bob.seqs(conv), range(1, 41), "bob: every entry once, in order, across the reconnect");
    assert.deepEqual(alice.seqs(conv), range(1, 41));
    assert.equal(bob.log.sockets.length, 2, "bob reconnected once");
    const hellos = bob.log.of("hello") as { resume?: Record<string, { seq: number; epoch: number }> }[];
    assert.equal(hellos[1]!.resume?.[conv]?.seq, 11, "the new hello resumed after what bob had");
    assert.ok((hellos[1]!.resume?.[conv]?.epoch ?? 0) > 0, "with the epoch of the stream it has");
    const bodies = bob.entries.get(conv)!.slice(1).map((e) => e.message?.body);
    assert.deepEqual(bodies, [...range(1, 10).map((i) => `before ${i}`), ...range(1, 20).map((i) => `away ${i}`), ...range(1, 10).map((i) => `after ${i}`)]);
  } finally {
    alice.close();
    bob.close();
  }
});

test("a repeated send gets the original seq, never a second one", async () => {
  const conv = `g:dup-${run}`;
  const alice = newClient("alice/phone");
  const bob = newClient("bob/phone");
  const store = new MemoryStore();
  const first = newClient("alice/dup", { store, namespace: "dup" });
  try {
    await Promise.all([alice.client.connect(), bob.client.connect(), first.client.connect()]);
    await group(conv, alice, [bob]);
    const cmid = `dup-${run}`;
    const sent = first.client.send(conv, "only once", { clientMsgId: cmid });
    const seq = await sent.done;
    assert.ok(seq !== undefined && seq > 1);
    first.close();
    // A crash after the gateway sequenced the send, before the device heard
    // of it: the send is still in the store, the position before its entry.
    const crashed = new MemoryStore();
    const device = new DeviceState(crashed, "dup");
    device.saveClientSeq(conv, sent.clientSeq);
    device.savePosition(conv, seq - 1);
    device.saveOutboxEntry(cmid, {
      conversationId: conv, clientMsgId: cmid, clientSeq: sent.clientSeq,
      message: { content_type: "text/plain", body: "only once" }, createdAt: Date.now(),
    });
    const second = newClient("alice/dup", { store: crashed, namespace: "dup" });
    try {
      const settled = second.client.whenSettled(cmid);
      assert.ok(settled !== undefined, "restored from the store");
      await second.client.connect();
      assert.equal(await settled, seq, "the repeat settles with the original seq");
      assert.equal(second.log.of("send").length, 1, "resent once");
      await waitFor("the original entry at the new instance", [second.client], () => second.seqs(conv).includes(seq));
      assert.deepEqual(second.seqs(conv), range(seq, second.seqs(conv).at(-1)!), "from its resume position, once each");
      await alice.client.send(conv, "after").done;
      await waitFor("the message after the repeat", [bob.client], () => bob.entries.get(conv)!.some((e) => e.message?.body === "after"));
      assert.equal(bob.entries.get(conv)!.filter((e) => e.clientMsgId === cmid).length, 1, "bob saw it once");
      assert.deepEqual(bob.seqs(conv), range(1, bob.seqs(conv).length));
    } finally {
      second.close();
    }
  } finally {
    alice.close();
    bob.close();
  }
});

test("an outbox kept in the store is resent, in order, by a new client instance", async () => {
  const conv = `g:outbox-${run}`;
  const alice = newClient("alice/phone");
  const bob = newClient("bob/phone");
  const store = new MemoryStore();
  try {
    await Promise.all([alice.client.connect(), bob.client.connect()]);
    await group(conv, alice, [bob]);
    // Offline: nothing listens there.
    const offline = newClient("alice/reload", { store, urls: ["ws://127.0.0.1:9/ws"], reconnectMaxMs: 100 });
    void offline.client.connect().catch(() => {});
    const h1 = offline.client.send(conv, "written offline 1");
    const h2 = offline.client.send(conv, "written offline 2");
    h1.done.catch(() => {});
    h2.done.catch(() => {});
    assert.deepEqual([h1.clientSeq, h2.clientSeq], [1, 2]);
    offline.close(); // the page goes away

    const online = newClient("alice/reload", { store });
    try {
      const p1 = online.client.whenSettled(h1.clientMsgId);
      const p2 = online.client.whenSettled(h2.clientMsgId);
      assert.ok(p1 && p2, "both restored");
      assert.deepEqual(online.client.pending(conv).map((s) => s.clientSeq), [1, 2], "shown as pending before any connection");
      await online.client.connect();
      const [s1, s2] = await Promise.all([p1, p2]);
      assert.ok(s1! < s2!, `kept their order: ${s1} < ${s2}`);
      const h3 = online.client.send(conv, "online 3");
      assert.equal(h3.clientSeq, 3, "client_seq goes on from the store");
      const s3 = await h3.done;
      await waitFor("the three at bob", [bob.client], () => bob.seqs(conv).includes(s3!));
      const mine = bob.entries.get(conv)!.filter((e) => e.senderDeviceId === "reload").map((e) => e.message?.body);
      assert.deepEqual(mine, ["written offline 1", "written offline 2", "online 3"]);
      assert.deepEqual(bob.seqs(conv), range(1, bob.seqs(conv).length));
    } finally {
      online.close();
    }
  } finally {
    alice.close();
    bob.close();
  }
});

test("a frame lost on the way is detected as a gap and filled by sync", async () => {
  const conv = `g:gap-${run}`;
  const dropSeq = 4;
  // A relay in front of a real gateway that loses one msg frame, once.
  const relay = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  let dropped = 0;
  relay.on("connection", (down) => {
    const up = new WebSocket(gateways[0]!);
    const early: string[] = [];
    up.on("open", () => early.splice(0).forEach((m) => up.send(m)));
    down.on("message", (m) => (up.readyState === WebSocket.OPEN ? up.send(m.toString()) : early.push(m.toString())));
    up.on("message", (m) => {
      const text = m.toString();
      const f = JSON.parse(text) as { type: string; conversation_id?: string; seq?: number };
      if (dropped === 0 && f.type === "msg" && f.conversation_id === conv && f.seq === dropSeq) {
        dropped++;
        return;
      }
      down.send(text);
    });
    up.on("close", () => down.close());
    down.on("close", () => up.close());
  });
  await new Promise((r) => relay.once("listening", r));
  const url = `ws://127.0.0.1:${(relay.address() as AddressInfo).port}/ws`;
  const alice = newClient("alice/phone");
  const bob = newClient("bob/relay", { urls: [url], gapWaitMs: 200 });
  try {
    await Promise.all([alice.client.connect(), bob.client.connect()]);
    await group(conv, alice, [bob]);
    for (const i of range(1, 8)) await alice.client.send(conv, `m${i}`).done;
    await waitFor("9 entries at bob", [bob.client], () => bob.seqs(conv).length >= 9);
    assert.equal(dropped, 1, "the relay lost one entry");
    assert.deepEqual(bob.seqs(conv), range(1, 9), "bob: in order, the lost one filled");
    const syncs = bob.log.of("sync") as { conversation_id: string; after_seq: number }[];
    assert.ok(syncs.some((s) => s.conversation_id === conv && s.after_seq === dropSeq - 1), `a sync after ${dropSeq - 1}: ${JSON.stringify(syncs)}`);
  } finally {
    alice.close();
    bob.close();
    relay.close();
  }
});

test("membership changes apply exactly from their seq", async () => {
  const conv = `g:members-${run}`;
  const alice = newClient("alice/phone");
  const bob = newClient("bob/phone");
  const carol = newClient("carol/phone");
  const kinds: string[] = [];
  bob.client.on("membership", (m) => m.conversationId === conv && m.me && kinds.push(m.kind));
  try {
    await Promise.all([alice.client.connect(), bob.client.connect(), carol.client.connect()]);
    await group(conv, alice, [bob]);
    await alice.client.send(conv, "before carol").done; // 2
    const joined = await alice.client.join(conv, "carol").done; // 3
    await waitFor("carol's join at carol", [carol.client], () => carol.seqs(conv).length >= 1);
    const left = await bob.client.leave(conv).done; // 4
    const whileAway = await alice.client.send(conv, "bob is away").done; // 5
    const back = await alice.client.join(conv, "bob").done; // 6
    const after = await alice.client.send(conv, "bob is back").done; // 7
    await waitFor("the last entry everywhere", [alice, bob, carol].map((c) => c.client), () =>
      [alice, bob, carol].every((c) => c.seqs(conv).includes(after!)),
    );
    assert.deepEqual(carol.seqs(conv), range(joined!, after!), "carol: from her join on");
    assert.equal(carol.entries.get(conv)![0]!.event?.kind, "joined");
    assert.deepEqual(bob.seqs(conv), [...range(1, left!), ...range(back!, after!)], "bob: nothing while away");
    assert.ok(!bob.seqs(conv).includes(whileAway!));
    assert.deepEqual(kinds, ["created", "left", "joined"]);
    assert.equal(bob.log.of("sync").length, 0, "the boundary needed no sync: the rejoin entry says where bob's seqs resume");
    assert.deepEqual(alice.seqs(conv), range(1, after!));

    // History pages (sync) hold only bob's periods, too.
    const pages: number[][] = [];
    // (History may trail the live stream for a moment: page on until it covers it.)
    for (let afterSeq = 0, reads = 0; afterSeq < after!; reads++) {
      assert.ok(reads < 200, `history never reached ${after}: pages ${JSON.stringify(pages)}`);
      const page = await bob.client.history(conv, afterSeq, 3);
      assert.ok(page.upToSeq >= afterSeq);
      if (page.entries.length > 0) pages.push(page.entries.map((e) => e.seq));
      afterSeq = page.upToSeq;
    }
    assert.deepEqual(pages.flat(), bob.seqs(conv), `bob's history pages ${JSON.stringify(pages)}`);
    assert.ok(pages[0]!.length === 3, "pages of the limit");
  } finally {
    alice.close();
    bob.close();
    carol.close();
  }
});

test("an edit and a recall arrive after their message, at every member, and history shows the result", async () => {
  const conv = `g:revise-${run}`;
  const alice = newClient("alice/phone");
  const bob = newClient("bob/phone");
  try {
    await Promise.all([alice.client.connect(), bob.client.connect()]);
    await group(conv, alice, [bob]);
    const hi = await alice.client.send(conv, "hi").done; // 2
    const two = await bob.client.send(conv, "two").done; // 3
    const edited = await alice.client.edit(conv, hi!, "hi, edited").done; // 4
    await assert.rejects(bob.client.edit(conv, hi!, "not mine").done, (e: { code?: string }) => e.code === "not_allowed");
    const recalled = await bob.client.recall(conv, two!).done; // 5
    await waitFor("the recall at both", [alice.client, bob.client], () => [alice, bob].every((c) => c.seqs(conv).includes(recalled!)));
    for (const c of [alice, bob]) {
      assert.deepEqual(c.seqs(conv), range(1, recalled!));
      const revs = c.entries.get(conv)!.filter((e) => e.revision !== undefined).map((e) => [e.seq, e.revision!.op, e.revision!.targetSeq]);
      assert.deepEqual(revs, [[edited, "edit", hi], [recalled, "recall", two]]);
    }
    // History (sync: msg frames) shows the messages as they are now.
    let page = await bob.client.history(conv, 1, 2);
    for (let reads = 0; page.entries.length < 2 || !page.entries[1]!.recalled; reads++) {
      assert.ok(reads < 200, `history never showed the recall: ${JSON.stringify(page.entries)}`);
      page = await bob.client.history(conv, 1, 2);
    }
    assert.deepEqual(page.entries.map((e) => [e.seq, e.message?.body, e.edited ?? false, e.recalled ?? false]), [
      [hi, "hi, edited", true, false],
      [two, undefined, false, true],
    ]);
  } finally {
    alice.close();
    bob.close();
  }
});

test("sends refused for the rate limit are resent in order and each lands once", async () => {
  const conv = `g:burst-${run}`;
  const alice = newClient("alice/phone");
  const bob = newClient("bob/phone");
  const burst = newClient("alice/burst", { urls: [slowGateway] });
  let refusals = 0;
  burst.client.on("pending", (p) => (refusals += p.sends.filter((s) => s.state === "refused").length > 0 ? 1 : 0));
  try {
    await Promise.all([alice.client.connect(), bob.client.connect(), burst.client.connect()]);
    await group(conv, alice, [bob]);
    const sends = range(1, 40).map((i) => burst.client.send(conv, `burst ${i}`));
    const seqs = (await Promise.all(sends.map((s) => s.done))) as number[];
    assert.ok(refusals > 0, "the gateway refused some (rate_limited)");
    const written = burst.log.of("send").length;
    assert.ok(written > 40, `refused sends were written again: ${written} writes for 40 sends`);
    assert.deepEqual(seqs, range(2, 41), "seqs in client_seq order (I2), one each (I3)");
    await waitFor("the burst at bob", [bob.client], () => bob.seqs(conv).length >= 41);
    assert.deepEqual(bob.seqs(conv), range(1, 41));
    assert.deepEqual(bob.entries.get(conv)!.slice(1).map((e) => e.message?.body), range(1, 40).map((i) => `burst ${i}`));
  } finally {
    alice.close();
    bob.close();
    burst.close();
  }
});
