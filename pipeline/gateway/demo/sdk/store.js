// Where the SDK keeps what must survive a reconnect and a page reload:
// resume positions, client_seq counters and the outbox.
/** Keeps everything in memory: survives reconnects, not a new process. */
export class MemoryStore {
    data = new Map();
    get(key) {
        return this.data.get(key);
    }
    set(key, value) {
        this.data.set(key, value);
    }
    delete(key) {
        this.data.delete(key);
    }
    keys(prefix) {
        return [...this.data.keys()].filter((k) => k.startsWith(prefix));
    }
}
/** Keeps everything in a browser's localStorage: survives page reloads. */
export class LocalStorageStore {
    storage;
    /** storage defaults to globalThis.localStorage. */
    constructor(storage) {
        const s = storage ?? globalThis.localStorage;
        if (s === undefined)
            throw new Error("LocalStorageStore: no localStorage on this platform; pass one");
        this.storage = s;
    }
    get(key) {
        return this.storage.getItem(key) ?? undefined;
    }
    set(key, value) {
        this.storage.setItem(key, value);
    }
    delete(key) {
        this.storage.removeItem(key);
    }
    keys(prefix) {
        const out = [];
        for (let i = 0; i < this.storage.length; i++) {
            const k = this.storage.key(i);
            if (k !== null && k.startsWith(prefix))
                out.push(k);
        }
        return out;
    }
}
/**
 * The SDK's records in a Store, under one namespace per device identity
 * (two devices sharing a namespace would share client_seq counters).
 */
export class DeviceState {
    store;
    namespace;
    constructor(store, namespace) {
        this.store = store;
        this.namespace = namespace;
    }
    key(kind, id) {
        return `${this.namespace}/${kind}/${id}`;
    }
    positions() {
        const out = new Map();
        const prefix = this.key("pos", "");
        for (const k of this.store.keys(prefix)) {
            const v = Number(this.store.get(k));
            if (Number.isSafeInteger(v) && v > 0)
                out.set(k.slice(prefix.length), v);
        }
        return out;
    }
    /** The epoch of each position's stream, where one is known. */
    positionEpochs() {
        const out = new Map();
        const prefix = this.key("epoch", "");
        for (const k of this.store.keys(prefix)) {
            const v = Number(this.store.get(k));
            if (Number.isSafeInteger(v) && v >= 0)
                out.set(k.slice(prefix.length), v);
        }
        return out;
    }
    savePosition(conversationId, seq, epoch) {
        this.store.set(this.key("pos", conversationId), String(seq));
        if (epoch !== undefined)
            this.store.set(this.key("epoch", conversationId), String(epoch));
    }
    /** Forgets the conversation's position: a reset starts it at seq 0 of epoch. */
    resetPosition(conversationId, epoch) {
        this.store.delete(this.key("pos", conversationId));
        this.store.set(this.key("epoch", conversationId), String(epoch));
    }
    lastClientSeq(conversationId) {
        const v = Number(this.store.get(this.key("cseq", conversationId)) ?? 0);
        return Number.isSafeInteger(v) ? v : 0;
    }
    saveClientSeq(conversationId, clientSeq) {
        this.store.set(this.key("cseq", conversationId), String(clientSeq));
    }
    outbox() {
        const out = [];
        for (const k of this.store.keys(this.key("out", ""))) {
            try {
                out.push(JSON.parse(this.store.get(k) ?? "null"));
            }
            catch {
                // A damaged record cannot be resent; leave it for inspection.
            }
        }
        return out;
    }
    saveOutboxEntry(clientMsgId, record) {
        this.store.set(this.key("out", clientMsgId), JSON.stringify(record));
    }
    deleteOutboxEntry(clientMsgId) {
        this.store.delete(this.key("out", clientMsgId));
    }
}
