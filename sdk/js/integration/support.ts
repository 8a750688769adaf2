// What the integration tests share: the gateways and tokens from the
// environment (set by pipeline/gateway/sdk_test.go), clients on the `ws`
// package, and waiting on events with a deadline.

import { WebSocket } from "ws";

import { SeqchatClient, type ChatEntry, type ClientOptions } from "../src/index.js";
import type { ClientFrame } from "../src/protocol.js";
import type { WebSocketConstructor, WebSocketLike } from "../src/websocket.js";

function required(name: string): string {
  const v = process.env[name];
  if (v === undefined || v === "") {
    throw new Error(`${name} is not set: run these tests through go test -run TestSDK ./pipeline/gateway/`);
  }
  return v;
}

export const gateways: string[] = required("SEQCHAT_GATEWAYS").split(",");
/** A gateway with a small send budget (20 sends/s, bursts of 5). */
export const slowGateway: string = required("SEQCHAT_SLOW_GATEWAY");
const tokens = JSON.parse(required("SEQCHAT_TOKENS")) as Record<string, string>;

export function token(userDevice: string): string {
  const t = tokens[userDevice];
  if (t === undefined) throw new Error(`no token for ${userDevice} in SEQCHAT_TOKENS`);
  return t;
}

/** A unique suffix, so reruns against one stack never meet old conversations. */
export const run = Date.now().toString(36);

/** The sockets a client opened, and every frame it wrote: tests drop them and count syncs. */
export class SocketLog {
  readonly sockets: WebSocket[] = [];
  readonly written: ClientFrame[] = [];
  readonly ctor: WebSocketConstructor;
  constructor() {
    const log = this;
    class Recording extends WebSocket {
      constructor(url: string) {
        super(url);
        log.sockets.push(this);
      }
      override send(data: string): void {
        log.written.push(JSON.parse(data) as ClientFrame);
        super.send(data);
      }
    }
    this.ctor = Recording as unknown as WebSocketConstructor;
  }
  get current(): WebSocket {
    return this.sockets[this.sockets.length - 1]!;
  }
  of(type: ClientFrame["type"]): ClientFrame[] {
    return this.written.filter((f) => f.type === type);
  }
}

export interface TestClient {
  client: SeqchatClient;
  log: SocketLog;
  /** Entries delivered, per conversation, in delivery order. */
  entries: Map<string, ChatEntry[]>;
  seqs(conv: string): number[];
  close(): void;
}

export function newClient(userDevice: string, opts: Partial<ClientOptions> = {}): TestClient {
  const log = new SocketLog();
  const client = new SeqchatClient({ urls: gateways, token: token(userDevice), WebSocket: log.ctor, ...opts });
  const entries = new Map<string, ChatEntry[]>();
  client.on("message", (e) => {
    const l = entries.get(e.conversationId) ?? [];
    l.push(e);
    entries.set(e.conversationId, l);
  });
  return {
    client,
    log,
    entries,
    seqs: (conv) => (entries.get(conv) ?? []).map((e) => e.seq),
    close: () => client.close(),
  };
}

/**
 * Resolves when cond holds, checked after every event of the clients;
 * rejects after timeoutMs (a failure, not a way to wait).
 */
export function waitFor(what: string, clients: SeqchatClient[], cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const offs: (() => void)[] = [];
    const done = (err?: Error) => {
      clearTimeout(timer);
      offs.forEach((off) => off());
      err ? reject(err) : resolve();
    };
    const check = () => {
      try {
        if (cond()) done();
      } catch (err) {
        done(err as Error);
      }
    };
    const timer = setTimeout(() => done(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
    for (const c of clients) {
      for (const ev of ["message", "settled", "synced", "state", "pending", "welcome"] as const) offs.push(c.on(ev, check));
    }
    check();
  });
}

/** 1..n, or lo..hi. */
export function range(lo: number, hi: number): number[] {
  return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
}

/** Checks the invariant over every delivered entry: strictly increasing seqs, none twice. */
export function assertOrdered(seqs: number[], what: string): void {
  for (let i = 1; i < seqs.length; i++) {
    if (seqs[i]! <= seqs[i - 1]!) throw new Error(`${what}: seq ${seqs[i]} after ${seqs[i - 1]} in ${seqs.join(",")}`);
  }
}

export type { WebSocketLike };
