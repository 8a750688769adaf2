// Per-conversation reorder buffer: the client's copy of the gateway's
// (pipeline/gateway/reorder.go). The gateway already delivers in order; this
// one makes the SDK's own guarantee independent of that and detects the
// gaps a lost frame or a resume from an older position would leave.
/**
 * Delivers one conversation's entries exactly once and in seq order.
 * Entries ahead of the next expected seq are held until the hole before
 * them is filled; entries at or below the delivered position are dropped.
 */
export class ReorderBuffer {
    maxHeld;
    next;
    held = new Map();
    gapSince = 0;
    /**
     * @param delivered the last seq already delivered (0: none).
     * @param maxHeld bound on held entries; past it offer drops the entry and
     *   reports overflow (it comes again from a sync). Zero means 1024.
     */
    constructor(delivered, maxHeld = 1024) {
        this.maxHeld = maxHeld;
        this.next = delivered + 1;
        if (maxHeld <= 0)
            this.maxHeld = 1024;
    }
    /** The last seq delivered. */
    get delivered() {
        return this.next - 1;
    }
    get heldCount() {
        return this.held.size;
    }
    /** Takes one entry; returns the entries now deliverable, in order. */
    offer(e, now) {
        if (e.seq < this.next || this.held.has(e.seq))
            return { ready: [], overflow: false };
        if (e.seq > this.next) {
            if (this.held.size >= this.maxHeld)
                return { ready: [], overflow: true };
            if (this.held.size === 0)
                this.gapSince = now;
            this.held.set(e.seq, e);
            return { ready: [], overflow: false };
        }
        const ready = [e];
        this.next++;
        this.release(ready);
        if (this.held.size > 0)
            this.gapSince = now; // a new hole opens behind what was released
        return { ready, overflow: false };
    }
    /**
     * Moves past every seq up to seq that is not held: they are not for this
     * device (periods when its user was not a member). Held entries up to seq
     * are delivered, in order.
     */
    skipTo(seq, now) {
        if (seq < this.next)
            return [];
        const ready = [];
        for (const s of this.heldSeqs()) {
            if (s > seq)
                break;
            ready.push(this.held.get(s));
            this.held.delete(s);
        }
        this.next = seq + 1;
        this.release(ready);
        if (this.held.size > 0)
            this.gapSince = now;
        return ready;
    }
    /** The first hole, if entries are held. */
    gap() {
        if (this.held.size === 0)
            return undefined;
        const lowest = Math.min(...this.held.keys());
        return { from: this.next, to: lowest - 1, since: this.gapSince };
    }
    heldSeqs() {
        return [...this.held.keys()].sort((a, b) => a - b);
    }
    release(ready) {
        for (let h = this.held.get(this.next); h !== undefined; h = this.held.get(this.next)) {
            this.held.delete(this.next);
            ready.push(h);
            this.next++;
        }
    }
}
