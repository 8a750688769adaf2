import assert from "node:assert/strict";
import { test } from "node:test";

import { ReorderBuffer } from "../src/reorder.js";
import { seeded, shuffle } from "./fakes.js";

interface E {
  seq: number;
  copy: number;
}

test("any arrival order with duplicates delivers 1..N once each, in order", () => {
  for (let seed = 1; seed <= 200; seed++) {
    const rnd = seeded(seed);
    const n = 1 + Math.floor(rnd() * 60);
    const arrivals: E[] = [];
    for (let s = 1; s <= n; s++) {
      arrivals.push({ seq: s, copy: 0 });
      if (rnd() < 0.3) arrivals.push({ seq: s, copy: 1 }); // a duplicate delivery
    }
    const r = new ReorderBuffer<E>(0);
    const delivered: number[] = [];
    for (const e of shuffle(arrivals, rnd)) {
      const { ready, overflow } = r.offer(e, 0);
      assert.equal(overflow, false);
      delivered.push(...ready.map((x) => x.seq));
      // After every offer: what was delivered is exactly 1..delivered, and
      // nothing held is at or below it.
      assert.deepEqual(delivered, Array.from({ length: r.delivered }, (_, i) => i + 1), `seed ${seed}`);
      assert.ok(r.heldSeqs().every((s) => s > r.delivered + 1), `seed ${seed}: held ${r.heldSeqs()} at ${r.delivered}`);
    }
    assert.equal(r.delivered, n, `seed ${seed}`);
    assert.equal(r.heldCount, 0);
  }
});

test("starts after the resume position and drops what is at or below it", () => {
  const r = new ReorderBuffer<E>(41);
  assert.deepEqual(r.offer({ seq: 41, copy: 0 }, 0).ready, []);
  assert.deepEqual(r.offer({ seq: 40, copy: 0 }, 0).ready, []);
  assert.deepEqual(r.offer({ seq: 42, copy: 0 }, 0).ready.map((e) => e.seq), [42]);
});

test("gap names the first hole and since when entries wait behind it", () => {
  const r = new ReorderBuffer<E>(0);
  assert.equal(r.gap(), undefined);
  r.offer({ seq: 4, copy: 0 }, 100);
  r.offer({ seq: 7, copy: 0 }, 150);
  assert.deepEqual(r.gap(), { from: 1, to: 3, since: 100 });
  for (const s of [1, 2, 3]) r.offer({ seq: s, copy: 0 }, 200);
  assert.deepEqual(r.gap(), { from: 5, to: 6, since: 200 }, "the hole behind what was released opens now");
  assert.equal(r.delivered, 4);
});

test("skipTo passes over unseen seqs and delivers held ones in order", () => {
  const r = new ReorderBuffer<E>(5);
  for (const s of [9, 11, 10, 13]) r.offer({ seq: s, copy: 0 }, 0);
  // Seqs 6..8 belong to a period the user was not a member.
  assert.deepEqual(r.skipTo(8, 0).map((e) => e.seq), [9, 10, 11]);
  assert.equal(r.delivered, 11);
  assert.deepEqual(r.gap(), { from: 12, to: 12, since: 0 });
  assert.deepEqual(r.skipTo(3, 0), [], "behind the position: nothing");
  assert.deepEqual(r.skipTo(12, 0).map((e) => e.seq), [13]);
  assert.equal(r.heldCount, 0);
});

test("a full buffer refuses entries and reports overflow", () => {
  const r = new ReorderBuffer<E>(0, 3);
  for (const s of [2, 3, 4]) assert.equal(r.offer({ seq: s, copy: 0 }, 0).overflow, false);
  assert.equal(r.offer({ seq: 5, copy: 0 }, 0).overflow, true);
  assert.deepEqual(r.offer({ seq: 1, copy: 0 }, 0).ready.map((e) => e.seq), [1, 2, 3, 4]);
  assert.equal(r.offer({ seq: 5, copy: 0 }, 0).ready.length, 1, "refused earlier, taken once there is room");
});
