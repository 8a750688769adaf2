// `sync` requests, one in flight per connection. The protocol's `synced`
// names no request, so the SDK never has two of its own open at once and
// takes a `synced` as the answer only if it fits the request: up_to_seq is
// the request's after_seq (nothing newer) or the seq of an entry received
// for it. (The gateway also sends `synced` on its own after a catch-up.)
// Its errors carry no ref either; they name the conversation instead.
import { SeqchatError } from "./errors.js";
export class SyncQueue {
    opts;
    queue = [];
    inFlight;
    timer;
    open = false;
    timeoutMs;
    constructor(opts) {
        this.opts = opts;
        this.timeoutMs = opts.timeoutMs || 15_000;
    }
    /** Asks for up to limit entries after afterSeq (1..1000). */
    request(conversationId, afterSeq, limit) {
        return new Promise((resolve, reject) => {
            this.queue.push({ conversationId, afterSeq, limit: Math.max(1, Math.min(1000, limit)), received: new Map(), resolve, reject });
            this.pump();
        });
    }
    /** Whether a request for the conversation is queued or in flight. */
    has(conversationId) {
        return this.inFlight?.conversationId === conversationId || this.queue.some((r) => r.conversationId === conversationId);
    }
    connectionOpen() {
        this.open = true;
        this.pump();
    }
    /** The in-flight request goes again, first, on the next connection. */
    connectionLost() {
        this.open = false;
        this.clearTimer();
        if (this.inFlight !== undefined) {
            this.inFlight.received.clear();
            this.queue.unshift(this.inFlight);
            this.inFlight = undefined;
        }
    }
    onMsg(f) {
        const r = this.inFlight;
        if (r !== undefined && r.conversationId === f.conversation_id && f.seq > r.afterSeq)
            r.received.set(f.seq, f);
    }
    /**
     * Takes a `synced`; returns the after_seq of the request it answers, or
     * undefined for one of the gateway's own.
     */
    onSynced(f) {
        const r = this.inFlight;
        if (r === undefined || r.conversationId !== f.conversation_id)
            return undefined;
        if (f.up_to_seq !== r.afterSeq && !r.received.has(f.up_to_seq))
            return undefined; // the gateway's own
        const entries = [...r.received.values()].filter((e) => e.seq <= f.up_to_seq).sort((a, b) => a.seq - b.seq);
        this.finish();
        r.resolve({ conversationId: r.conversationId, afterSeq: r.afterSeq, upToSeq: f.up_to_seq, complete: f.complete, entries });
        return r.afterSeq;
    }
    /**
     * A non-fatal error without ref whose message starts with
     * `sync <conversation_id>:` answers the in-flight request (protocol.md,
     * sync); true if so.
     */
    onError(f) {
        const r = this.inFlight;
        if (r === undefined || f.ref !== undefined || f.fatal || !f.message.startsWith(`sync ${r.conversationId}:`))
            return false;
        if (f.code !== "not_member" && f.code !== "unavailable" && f.code !== "unknown_conversation")
            return false;
        this.finish();
        r.reject(new SeqchatError(f.code, f.message, { conversationId: r.conversationId }));
        return true;
    }
    /** Fails everything (the client was closed). */
    close() {
        this.open = false;
        this.clearTimer();
        const all = this.inFlight ? [this.inFlight, ...this.queue] : [...this.queue];
        this.inFlight = undefined;
        this.queue.length = 0;
        for (const r of all)
            r.reject(new SeqchatError("client_closed", "the client was closed", { conversationId: r.conversationId }));
    }
    finish() {
        this.clearTimer();
        this.inFlight = undefined;
        this.pump();
    }
    pump() {
        if (!this.open || this.inFlight !== undefined)
            return;
        const r = this.queue.shift();
        if (r === undefined)
            return;
        if (!this.opts.write({ type: "sync", conversation_id: r.conversationId, after_seq: r.afterSeq, limit: r.limit })) {
            this.queue.unshift(r);
            return;
        }
        this.inFlight = r;
        this.timer = this.opts.clock.setTimeout(() => {
            if (this.inFlight !== r)
                return;
            this.timer = undefined;
            this.inFlight = undefined;
            r.reject(new SeqchatError("sync_timeout", `no answer to sync of ${r.conversationId} within ${this.timeoutMs} ms`, { conversationId: r.conversationId }));
            this.pump();
        }, this.timeoutMs);
    }
    clearTimer() {
        if (this.timer !== undefined) {
            this.opts.clock.clearTimeout(this.timer);
            this.timer = undefined;
        }
    }
}
