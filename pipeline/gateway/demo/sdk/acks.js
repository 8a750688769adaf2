// Batched cumulative acknowledgements: one ack per conversation for many
// delivered entries, sent after a short delay or once enough piled up.
export class AckBatcher {
    opts;
    pending = new Map();
    count = 0;
    timer;
    delayMs;
    maxPending;
    constructor(opts) {
        this.opts = opts;
        this.delayMs = opts.delayMs || 200;
        this.maxPending = opts.maxPending || 100;
    }
    /** Records that seq of conversationId was delivered to the application. */
    delivered(conversationId, seq) {
        if (seq <= (this.pending.get(conversationId) ?? 0))
            return;
        this.pending.set(conversationId, seq);
        this.count++;
        if (this.count >= this.maxPending) {
            this.flush();
        }
        else if (this.timer === undefined) {
            this.timer = this.opts.clock.setTimeout(() => {
                this.timer = undefined;
                this.flush();
            }, this.delayMs);
        }
    }
    /** Sends what waits now; positions are persisted even when sending fails. */
    flush() {
        if (this.timer !== undefined) {
            this.opts.clock.clearTimeout(this.timer);
            this.timer = undefined;
        }
        if (this.pending.size === 0)
            return;
        const batch = new Map(this.pending);
        this.opts.persist?.(batch);
        const frames = [...batch].map(([conversation_id, seq]) => ({ type: "ack", conversation_id, seq }));
        if (this.opts.send(frames)) {
            this.pending.clear();
            this.count = 0;
        }
    }
    /**
     * Forgets unsent acks: a new connection's hello carries the delivered
     * positions as resume points, which acknowledges them.
     */
    resumed() {
        if (this.pending.size > 0)
            this.opts.persist?.(new Map(this.pending));
        this.pending.clear();
        this.count = 0;
        if (this.timer !== undefined) {
            this.opts.clock.clearTimeout(this.timer);
            this.timer = undefined;
        }
    }
    /** Forgets the conversation's unsent ack (a reset: it is of another epoch). */
    forget(conversationId) {
        this.pending.delete(conversationId);
    }
    stop() {
        this.resumed();
    }
}
