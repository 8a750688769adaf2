// Where the SDK keeps what must survive a reconnect and a page reload:
// resume positions, client_seq counters and the outbox.

/** A synchronous string key-value store. */
export interface Store {
  get(key: string): string | undefined;
  set(key: string, value: string): void;
  delete(key: string): void;
  /** The keys that start with prefix. */
  keys(prefix: string): string[];
}

/** Keeps everything in memory: survives reconnects, not a new process. */
export class MemoryStore implements Store {
  private readonly data = new Map<string, string>();
  get(key: string): string | undefined {
    return this.data.get(key);
  }
  set(key: string, value: string): void {
    this.data.set(key, value);
  }
  delete(key: string): void {
    this.data.delete(key);
  }
  keys(prefix: string): string[] {
    return [...this.data.keys()].filter((k) => k.startsWith(prefix));
  }
}

/** The part of the Web Storage API (localStorage) the SDK uses. */
export interface WebStorage {
  readonly length: number;
  key(index: number): string | null;
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** Keeps everything in a browser's localStorage: survives page reloads. */
export class LocalStorageStore implements Store {
  private readonly storage: WebStorage;

  /** storage defaults to globalThis.localStorage. */
  constructor(storage?: WebStorage) {
    const s = storage ?? (globalThis as { localStorage?: WebStorage }).localStorage;
    if (s === undefined) throw new Error("LocalStorageStore: no localStorage on this platform; pass one");
    this.storage = s;
  }
  get(key: string): string | undefined {
    return this.storage.getItem(key) ?? undefined;
  }
  set(key: string, value: string): void {
    this.storage.setItem(key, value);
  }
  delete(key: string): void {
    this.storage.removeItem(key);
  }
  keys(prefix: string): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.storage.length; i++) {
      const k = this.storage.key(i);
      if (k !== null && k.startsWith(prefix)) out.push(k);
    }
    return out;
  }
}

/**
 * The SDK's records in a Store, under one namespace per device identity
 * (two devices sharing a namespace would share client_seq counters).
 */
export class DeviceState {
  constructor(
    private readonly store: Store,
    private readonly namespace: string,
  ) {}

  private key(kind: string, id: string): string {
    return `${this.namespace}/${kind}/${id}`;
  }

  positions(): Map<string, number> {
    const out = new Map<string, number>();
    const prefix = this.key("pos", "");
    for (const k of this.store.keys(prefix)) {
      const v = Number(this.store.get(k));
      if (Number.isSafeInteger(v) && v > 0) out.set(k.slice(prefix.length), v);
    }
    return out;
  }

  /** The epoch of each position's stream, where one is known. */
  positionEpochs(): Map<string, number> {
    const out = new Map<string, number>();
    const prefix = this.key("epoch", "");
    for (const k of this.store.keys(prefix)) {
      const v = Number(this.store.get(k));
      if (Number.isSafeInteger(v) && v >= 0) out.set(k.slice(prefix.length), v);
    }
    return out;
  }

  savePosition(conversationId: string, seq: number, epoch?: number): void {
    this.store.set(this.key("pos", conversationId), String(seq));
    if (epoch !== undefined) this.store.set(this.key("epoch", conversationId), String(epoch));
  }

  /** Forgets the conversation's position: a reset starts it at seq 0 of epoch. */
  resetPosition(conversationId: string, epoch: number): void {
    this.store.delete(this.key("pos", conversationId));
    this.store.set(this.key("epoch", conversationId), String(epoch));
  }

  lastClientSeq(conversationId: string): number {
    const v = Number(this.store.get(this.key("cseq", conversationId)) ?? 0);
    return Number.isSafeInteger(v) ? v : 0;
  }

  saveClientSeq(conversationId: string, clientSeq: number): void {
    this.store.set(this.key("cseq", conversationId), String(clientSeq));
  }

  outbox(): unknown[] {
    const out: unknown[] = [];
    for (const k of this.store.keys(this.key("out", ""))) {
      try {
        out.push(JSON.parse(this.store.get(k) ?? "null"));
      } catch {
        // A damaged record cannot be resent; leave it for inspection.
      }
    }
    return out;
  }

  saveOutboxEntry(clientMsgId: string, record: unknown): void {
    this.store.set(this.key("out", clientMsgId), JSON.stringify(record));
  }

  deleteOutboxEntry(clientMsgId: string): void {
    this.store.delete(this.key("out", clientMsgId));
  }
}
