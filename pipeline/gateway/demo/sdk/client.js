// SeqchatClient: one device's connection to the gateways. It wires the
// pure parts (reorder buffers, ack batcher, outbox, sync queue, reconnect
// schedule) to a WebSocket and to the application's events.
import { AckBatcher } from "./acks.js";
import { Reconnector } from "./backoff.js";
import { systemClock } from "./clock.js";
import { isAuthCode, isRetryableSendCode, SeqchatError } from "./errors.js";
import { Emitter } from "./events.js";
import { Outbox } from "./outbox.js";
import { decodeServerFrame, encodeFrame, FrameDecodeError, } from "./protocol.js";
import { ReorderBuffer } from "./reorder.js";
import { toEntry } from "./entries.js";
import { DeviceState, MemoryStore } from "./store.js";
import { SyncQueue } from "./syncs.js";
import { OPEN, platformWebSocket } from "./websocket.js";
export class SeqchatClient extends Emitter {
    opts;
    clock;
    random;
    WS;
    device;
    outbox;
    acks;
    syncs;
    reconnector;
    reorders = new Map();
    /** false after this user's own left/kicked entry; true after created/joined. */
    member = new Map();
    /** The epoch of each conversation's stream the device holds. */
    epochs = new Map();
    gapTimers = new Map();
    /** The highest seq a full reorder buffer dropped, per conversation: a sync fetches it again. */
    dropped = new Map();
    waiters = new Map();
    /** Read marks not written yet: the highest per conversation. */
    unsentReads = new Map();
    /** conversations() calls waiting for their answer, in the order asked. */
    listWaiters = [];
    ws;
    welcomed = false;
    me;
    closed = false;
    stopped;
    retryTimer;
    dialTimer;
    helloTimer;
    pingTimer;
    lastFrameAt = 0;
    pings = 0;
    firstWelcome;
    connecting;
    connectionState = "closed";
    constructor(opts) {
        super();
        this.opts = opts;
        this.clock = opts.clock ?? systemClock;
        this.random = opts.random ?? Math.random;
        const WS = opts.WebSocket ?? platformWebSocket();
        if (WS === undefined)
            throw new Error("no WebSocket on this platform: pass options.WebSocket (the `ws` package in Node 20)");
        this.WS = WS;
        this.device = new DeviceState(opts.store ?? new MemoryStore(), opts.namespace ?? "seqchat");
        for (const [conv, seq] of this.device.positions())
            this.reorders.set(conv, new ReorderBuffer(seq, opts.maxHeld));
        for (const [conv, epoch] of this.device.positionEpochs())
            this.epochs.set(conv, epoch);
        this.outbox = new Outbox({ state: this.device, clock: this.clock, random: this.random });
        this.acks = new AckBatcher({
            clock: this.clock,
            delayMs: opts.ackDelayMs,
            send: (frames) => this.welcomed && frames.every((f) => this.write(f)),
            persist: (positions) => positions.forEach((seq, conv) => this.device.savePosition(conv, seq, this.epochs.get(conv))),
        });
        this.syncs = new SyncQueue({ clock: this.clock, timeoutMs: opts.syncTimeoutMs, write: (f) => this.welcomed && this.write(f) });
        const urls = typeof opts.urls === "string" ? [opts.urls] : opts.urls;
        this.reconnector = new Reconnector(urls, { random: this.random, initialMs: opts.reconnectInitialMs, maxMs: opts.reconnectMaxMs });
    }
    /** Connects (and keeps reconnecting until close); resolves at the first welcome. */
    connect() {
        if (this.closed)
            return Promise.reject(new SeqchatError("client_closed", "the client was closed"));
        if (this.connecting !== undefined)
            return this.connecting;
        this.connecting = new Promise((resolve, reject) => (this.firstWelcome = { resolve, reject }));
        if (this.me === undefined)
            void this.dial();
        else
            this.firstWelcome?.resolve(); // connected before
        return this.connecting;
    }
    /** Flushes acks, closes the connection and stops reconnecting. Pending sends stay in the store. */
    close() {
        if (this.closed)
            return;
        this.acks.flush();
        this.closed = true;
        this.clearTimers();
        this.syncs.close();
        const err = new SeqchatError("client_closed", "the client was closed");
        for (const w of this.waiters.values())
            w.reject(err);
        this.waiters.clear();
        for (const w of this.listWaiters.splice(0))
            w.reject(err);
        this.firstWelcome?.reject(err);
        this.firstWelcome = undefined;
        const ws = this.ws;
        this.ws = undefined;
        this.welcomed = false;
        ws?.close(1000, "client closed");
        this.setState("closed");
    }
    get state() {
        return this.connectionState;
    }
    /** The user and device the gateway knows this client as (after welcome). */
    get identity() {
        return this.me;
    }
    /** The last seq of the conversation delivered to the application. */
    delivered(conversationId) {
        return this.reorders.get(conversationId)?.delivered ?? 0;
    }
    /** The conversation's pending sends, in client_seq order (shown in place until settled). */
    pending(conversationId) {
        return this.outbox.pending(conversationId);
    }
    /** Sends a message; text is sent as text/plain. */
    send(conversationId, message, opts = {}) {
        const body = typeof message === "string" ? { content_type: "text/plain", body: message } : message;
        return this.submit(conversationId, { message: body }, opts.clientMsgId);
    }
    /**
     * Edits an earlier message of this user (seq: the message's): the new
     * content is an entry of its own, after the message, so every device
     * applies it there (ChatEntry.revision).
     */
    edit(conversationId, seq, message, opts = {}) {
        const body = typeof message === "string" ? { content_type: "text/plain", body: message } : message;
        return this.submit(conversationId, { revision: { op: "edit", target_seq: seq }, message: body }, opts.clientMsgId);
    }
    /** Recalls a message: its sender's within the recall window, or any as the group's creator. */
    recall(conversationId, seq, opts = {}) {
        return this.submit(conversationId, { revision: { op: "recall", target_seq: seq } }, opts.clientMsgId);
    }
    /** Sends a membership change. */
    control(conversationId, control, opts = {}) {
        return this.submit(conversationId, { control }, opts.clientMsgId);
    }
    createGroup(conversationId, title, userIds = []) {
        return this.control(conversationId, { op: "create_group", title, user_ids: userIds });
    }
    join(conversationId, userId) {
        return this.control(conversationId, { op: "join", user_id: userId });
    }
    leave(conversationId) {
        return this.control(conversationId, { op: "leave" });
    }
    kick(conversationId, userId) {
        return this.control(conversationId, { op: "kick", user_id: userId });
    }
    /**
     * Reads a page of the conversation's history after afterSeq (through
     * `sync`): only entries of periods in which the user was a member. The
     * next page starts after the returned upToSeq; complete says history
     * holds nothing newer yet. Waits for a connection if there is none.
     */
    async history(conversationId, afterSeq = 0, limit = 100) {
        if (this.closed)
            throw new SeqchatError("client_closed", "the client was closed");
        return this.syncs.request(conversationId, afterSeq, limit);
    }
    /**
     * Marks the conversation read up to seq by this user (all its devices
     * share one position; a lower one than the current changes nothing). An
     * app with no separate notion of reading calls it with what it shows.
     * Not connected: the highest mark per conversation goes on the next
     * connection. Nothing answers it; the other devices and members get a
     * `receipt`.
     */
    markRead(conversationId, seq) {
        if (!Number.isSafeInteger(seq) || seq < 1)
            throw new SeqchatError("invalid", `read seq ${seq}: want 1 or more`);
        const prev = this.unsentReads.get(conversationId) ?? 0;
        this.unsentReads.set(conversationId, Math.max(prev, seq));
        if (this.welcomed)
            this.writeReads();
    }
    /**
     * The user's conversations with the last seq it may see, its read
     * position and unread count (from history). Waits for a connection if
     * there is none; a request lost with its connection is asked again.
     */
    conversations() {
        if (this.closed)
            return Promise.reject(new SeqchatError("client_closed", "the client was closed"));
        return new Promise((resolve, reject) => {
            this.listWaiters.push({ resolve, reject });
            if (this.welcomed)
                this.write({ type: "conversations" });
        });
    }
    writeReads() {
        for (const [conv, seq] of this.unsentReads) {
            if (!this.write({ type: "read", conversation_id: conv, seq }))
                return;
            this.unsentReads.delete(conv);
        }
    }
    /** Sends the acks that wait now (close does it too). */
    flushAcks() {
        this.acks.flush();
    }
    /**
     * How a pending send ends (one restored from the store by an earlier
     * instance too): its seq, or a SeqchatError. Undefined if it is not pending.
     */
    whenSettled(clientMsgId) {
        if (this.outbox.get(clientMsgId) === undefined)
            return undefined;
        const prev = this.waiters.get(clientMsgId);
        return new Promise((resolve, reject) => {
            this.waiters.set(clientMsgId, {
                resolve: (seq) => (prev?.resolve(seq), resolve(seq)),
                reject: (e) => (prev?.reject(e), reject(e)),
            });
        });
    }
    submit(conversationId, content, clientMsgId) {
        if (this.closed)
            throw new SeqchatError("client_closed", "the client was closed");
        const id = clientMsgId ?? this.opts.newClientMsgId?.() ?? randomId();
        const s = this.outbox.add(conversationId, content, id);
        const done = new Promise((resolve, reject) => this.waiters.set(id, { resolve, reject }));
        done.catch(() => { }); // the application may not await it; the event reports it too
        this.pendingChanged(conversationId);
        this.writeDue();
        return { clientMsgId: id, clientSeq: s.clientSeq, done };
    }
    // Connection.
    async dial() {
        this.dialTimer = undefined;
        if (this.closed)
            return;
        this.setState(this.me === undefined ? "connecting" : "reconnecting");
        let token;
        try {
            token = typeof this.opts.token === "string" ? this.opts.token : await this.opts.token();
        }
        catch (err) {
            this.emit("error", new SeqchatError("token_invalid", `the token provider failed: ${String(err)}`));
            this.scheduleDial();
            return;
        }
        if (this.closed)
            return;
        const url = this.reconnector.nextUrl();
        let ws;
        try {
            ws = new this.WS(url);
        }
        catch (err) {
            this.emit("error", new SeqchatError("unavailable", `cannot dial ${url}: ${String(err)}`));
            this.scheduleDial();
            return;
        }
        this.ws = ws;
        ws.onopen = () => {
            if (this.ws !== ws)
                return;
            const resume = {};
            for (const [conv, r] of this.reorders) {
                if (r.delivered === 0)
                    continue;
                const epoch = this.epochs.get(conv);
                resume[conv] = epoch === undefined ? r.delivered : { seq: r.delivered, epoch };
            }
            this.write({ type: "hello", token, resume });
        };
        ws.onmessage = (ev) => {
            if (this.ws !== ws)
                return;
            this.lastFrameAt = this.clock.now();
            this.receive(ev.data);
        };
        ws.onclose = () => this.lost(ws);
        ws.onerror = () => { }; // a close follows
        this.helloTimer = this.clock.setTimeout(() => {
            this.helloTimer = undefined;
            if (this.ws === ws && !this.welcomed)
                ws.close(1000, "no welcome");
        }, this.opts.helloTimeoutMs || 10_000);
    }
    lost(ws) {
        if (this.ws !== ws)
            return;
        this.ws = undefined;
        this.welcomed = false;
        this.clock.clearTimeout(this.helloTimer);
        this.clock.clearTimeout(this.pingTimer);
        this.pingTimer = undefined;
        this.outbox.connectionLost();
        this.syncs.connectionLost();
        for (const t of this.gapTimers.values())
            this.clock.clearTimeout(t);
        this.gapTimers.clear();
        if (this.closed)
            return;
        if (this.stopped !== undefined) {
            this.firstWelcome?.reject(this.stopped);
            this.firstWelcome = undefined;
            this.closed = true;
            this.clearTimers();
            this.setState("closed");
            return;
        }
        this.scheduleDial();
    }
    scheduleDial() {
        if (this.closed)
            return;
        this.setState("reconnecting");
        this.dialTimer = this.clock.setTimeout(() => void this.dial(), this.reconnector.nextDelay());
    }
    write(f) {
        const ws = this.ws;
        if (ws === undefined || ws.readyState !== OPEN)
            return false;
        try {
            ws.send(encodeFrame(f));
            return true;
        }
        catch {
            return false;
        }
    }
    setState(s) {
        if (s === this.connectionState)
            return;
        this.connectionState = s;
        this.emit("state", s);
    }
    clearTimers() {
        for (const t of [this.retryTimer, this.dialTimer, this.helloTimer, this.pingTimer, ...this.gapTimers.values()]) {
            if (t !== undefined)
                this.clock.clearTimeout(t);
        }
        this.retryTimer = this.dialTimer = this.helloTimer = this.pingTimer = undefined;
        this.gapTimers.clear();
        this.acks.stop();
    }
    // Frames from the gateway.
    receive(data) {
        let f;
        try {
            f = decodeServerFrame(typeof data === "string" ? data : String(data));
        }
        catch (err) {
            const msg = err instanceof FrameDecodeError ? err.message : String(err);
            this.emit("error", new SeqchatError("bad_server_frame", msg));
            return;
        }
        switch (f.type) {
            case "welcome":
                return this.onWelcome(f);
            case "msg":
                return this.onMsg(f);
            case "reset":
                return this.resetConversation(f.conversation_id, f.epoch, f.message);
            case "synced": {
                // Every entry up to up_to_seq the user may see has come before this
                // frame: the others are from periods it was not a member. Not so
                // for a history page that starts ahead of the delivered position.
                const answered = this.syncs.onSynced(f);
                const r = this.reorder(f.conversation_id);
                if (answered === undefined || answered <= r.delivered)
                    this.deliver(f.conversation_id, r.skipTo(f.up_to_seq, this.clock.now()));
                this.watchGap(f.conversation_id);
                this.emit("synced", { conversationId: f.conversation_id, upToSeq: f.up_to_seq, complete: f.complete });
                return;
            }
            case "accepted":
                return this.settled(this.outbox.accepted(f.client_msg_id, f.seq));
            case "rejected":
                return this.settled(this.outbox.rejected(f.client_msg_id, SeqchatError.fromRejected(f)));
            case "error":
                return this.onError(f);
            case "pong":
                return;
            case "receipt":
                this.emit("receipt", { conversationId: f.conversation_id, userId: f.user_id, seq: f.seq });
                return;
            case "conversations":
                this.listWaiters.shift()?.resolve(f.conversations);
                return;
        }
    }
    onWelcome(f) {
        this.welcomed = true;
        this.me = { user: f.user_id, device: f.device_id };
        this.clock.clearTimeout(this.helloTimer);
        this.helloTimer = undefined;
        this.reconnector.connected();
        this.acks.resumed();
        this.setState("open");
        this.emit("welcome", f);
        this.firstWelcome?.resolve();
        this.firstWelcome = undefined;
        this.writeDue();
        this.writeReads();
        for (const _ of this.listWaiters)
            this.write({ type: "conversations" }); // asked again: the answers of a lost connection are lost
        this.syncs.connectionOpen();
        for (const conv of this.reorders.keys())
            this.watchGap(conv);
        this.keepAlive();
    }
    /** Pings on a timer; gives a silent connection up without waiting for its close. */
    keepAlive() {
        const interval = this.opts.pingIntervalMs || 25_000;
        if (interval < 0)
            return;
        const ws = this.ws;
        this.pingTimer = this.clock.setTimeout(() => {
            this.pingTimer = undefined;
            if (ws === undefined || this.ws !== ws)
                return;
            if (this.clock.now() - this.lastFrameAt >= 2 * interval) {
                this.emit("error", new SeqchatError("unavailable", `no frame from the gateway for ${2 * interval} ms; reconnecting`));
                ws.close(4000, "silent");
                this.lost(ws); // the close handshake of a dead connection would take long
                return;
            }
            this.write({ type: "ping", id: `k${++this.pings}` });
            this.keepAlive();
        }, interval);
    }
    onMsg(f) {
        const epoch = f.epoch ?? 0;
        const held = this.epochs.get(f.conversation_id);
        if (held !== undefined && epoch < held)
            return; // of an older epoch: stale
        if (held !== undefined && epoch > held) {
            this.resetConversation(f.conversation_id, epoch, `an entry of epoch ${epoch} follows epoch ${held}`);
        }
        this.epochs.set(f.conversation_id, epoch);
        this.syncs.onMsg(f);
        const r = this.reorder(f.conversation_id);
        const now = this.clock.now();
        // A membership boundary: an entry that adds this user after a period
        // out of the conversation (or first) follows seqs it may not see.
        if (f.seq > r.delivered + 1 && this.addsMe(f) && this.member.get(f.conversation_id) !== true) {
            this.deliver(f.conversation_id, r.skipTo(f.seq - 1, now));
        }
        const { ready, overflow } = r.offer(f, now);
        if (overflow)
            this.dropped.set(f.conversation_id, Math.max(f.seq, this.dropped.get(f.conversation_id) ?? 0));
        this.deliver(f.conversation_id, ready);
        this.watchGap(f.conversation_id);
    }
    onError(f) {
        const err = SeqchatError.fromErrorFrame(f);
        if (f.ref !== undefined && this.outbox.get(f.ref) !== undefined) {
            if (isRetryableSendCode(f.code)) {
                const s = this.outbox.get(f.ref);
                this.outbox.refused(f.ref, f.code, f.retry_after_ms, this.clock.now());
                this.pendingChanged(s.conversationId);
                this.scheduleRetry();
            }
            else {
                this.settled(this.outbox.rejected(f.ref, err));
            }
        }
        else if (f.message.startsWith("conversations:") && this.listWaiters.length > 0) {
            this.listWaiters.shift().reject(err);
        }
        else if (!this.syncs.onError(f)) {
            if (f.fatal && isAuthCode(f.code) && typeof this.opts.token === "string")
                this.stopped = err;
        }
        if (f.ref === undefined || f.fatal)
            this.emit("error", err);
    }
    addsMe(f) {
        const e = f.event;
        return e !== undefined && (e.kind === "created" || e.kind === "joined") && this.me !== undefined && e.user_ids.includes(this.me.user);
    }
    /** Drops everything held of conv: its stream starts again at seq 1 of epoch. */
    resetConversation(conv, epoch, message) {
        this.reorders.set(conv, new ReorderBuffer(0, this.opts.maxHeld));
        this.epochs.set(conv, epoch);
        this.dropped.delete(conv);
        this.member.delete(conv);
        this.acks.forget(conv);
        this.device.resetPosition(conv, epoch);
        this.emit("reset", { conversationId: conv, epoch, message });
    }
    reorder(conv) {
        let r = this.reorders.get(conv);
        if (r === undefined) {
            r = new ReorderBuffer(0, this.opts.maxHeld);
            this.reorders.set(conv, r);
        }
        return r;
    }
    /** Hands entries (in order) to the application, then acks them. */
    deliver(conv, entries) {
        for (const f of entries) {
            const own = this.me !== undefined && f.sender_user_id === this.me.user && f.sender_device_id === this.me.device;
            if (f.event !== undefined && this.me !== undefined && f.event.user_ids.includes(this.me.user)) {
                this.member.set(conv, f.event.kind === "created" || f.event.kind === "joined");
            }
            this.emit("message", toEntry(f, own));
            if (f.event !== undefined) {
                this.emit("membership", {
                    conversationId: conv,
                    seq: f.seq,
                    kind: f.event.kind,
                    userIds: f.event.user_ids,
                    ...(f.event.title !== undefined ? { title: f.event.title } : {}),
                    me: this.me !== undefined && f.event.user_ids.includes(this.me.user),
                });
            }
            if (own && f.client_msg_id !== undefined)
                this.settled(this.outbox.sequenced(f.client_msg_id, f.seq));
            this.acks.delivered(conv, f.seq);
        }
    }
    /**
     * What the conversation misses: the first hole, or entries a full buffer
     * dropped (nothing later may come live to show that hole).
     */
    missing(conv) {
        const r = this.reorders.get(conv);
        if (r === undefined)
            return undefined;
        const gap = r.gap();
        if (gap !== undefined)
            return gap.to - gap.from + 1;
        const top = this.dropped.get(conv) ?? 0;
        if (top <= r.delivered) {
            this.dropped.delete(conv);
            return undefined;
        }
        return Math.min(1000, top - r.delivered);
    }
    /** Starts the wait before a sync fills what the conversation misses. */
    watchGap(conv) {
        const r = this.reorders.get(conv);
        if (!this.welcomed || r === undefined || this.missing(conv) === undefined || this.gapTimers.has(conv) || this.syncs.has(conv))
            return;
        this.gapTimers.set(conv, this.clock.setTimeout(() => {
            this.gapTimers.delete(conv);
            const limit = this.missing(conv);
            if (limit === undefined || this.syncs.has(conv))
                return;
            this.emit("filling", { conversationId: conv, afterSeq: r.delivered, limit });
            this.syncs
                .request(conv, r.delivered, limit)
                .catch((err) => {
                if (err.code !== "client_closed")
                    this.emit("error", err);
            })
                .finally(() => this.watchGap(conv));
        }, this.opts.gapWaitMs || 500));
    }
    // Sends.
    writeDue() {
        if (!this.welcomed)
            return;
        for (const f of this.outbox.due(this.clock.now()))
            this.write(f);
        this.scheduleRetry();
    }
    scheduleRetry() {
        if (this.retryTimer !== undefined)
            this.clock.clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
        const at = this.outbox.nextRetryAt();
        if (at === undefined || this.closed || !this.welcomed)
            return; // welcome writes what waits
        this.retryTimer = this.clock.setTimeout(() => {
            this.retryTimer = undefined;
            this.writeDue();
        }, Math.max(0, at - this.clock.now()));
    }
    settled(st) {
        if (st === undefined)
            return;
        const w = this.waiters.get(st.send.clientMsgId);
        this.waiters.delete(st.send.clientMsgId);
        if (st.kind === "sequenced")
            w?.resolve(st.seq);
        else
            w?.reject(st.error);
        this.emit("settled", st);
        this.pendingChanged(st.send.conversationId);
        // A refused send that was waiting may now be due: nothing else wakes it.
        this.writeDue();
    }
    pendingChanged(conv) {
        this.emit("pending", { conversationId: conv, sends: this.outbox.pending(conv) });
    }
}
/**
 * A random client_msg_id. crypto.randomUUID exists only in secure contexts
 * (https, localhost); getRandomValues everywhere.
 */
function randomId() {
    const c = globalThis.crypto;
    if (typeof c.randomUUID === "function")
        return c.randomUUID();
    const b = c.getRandomValues(new Uint8Array(16));
    return "c-" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
