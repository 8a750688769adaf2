import assert from "node:assert/strict";
import { test } from "node:test";

import { Reconnector } from "../src/backoff.js";
import { seeded } from "./fakes.js";

test("dials rotate through every gateway", () => {
  const r = new Reconnector(["a", "b", "c"], { random: seeded(1) });
  const dialed = Array.from({ length: 6 }, () => r.nextUrl());
  assert.deepEqual(new Set(dialed.slice(0, 3)), new Set(["a", "b", "c"]));
  assert.deepEqual(dialed.slice(3), dialed.slice(0, 3));
});

test("waits double up to the cap, jittered within the upper half, and start over after a connection", () => {
  const r = new Reconnector(["a"], { random: seeded(2), initialMs: 100, maxMs: 2000 });
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 10; i++) {
      const backoff = Math.min(100 * 2 ** i, 2000);
      const d = r.nextDelay();
      assert.ok(d >= backoff / 2 && d <= backoff, `attempt ${i}: ${d} outside [${backoff / 2}, ${backoff}]`);
    }
    r.connected();
  }
});
