// Reconnect schedule: exponential backoff with jitter, rotating through the
// gateway URLs so that one gateway down does not keep a client away.
export class Reconnector {
    urls;
    opts;
    attempt = 0;
    next = 0;
    initialMs;
    maxMs;
    constructor(urls, opts) {
        this.urls = urls;
        this.opts = opts;
        if (urls.length === 0)
            throw new Error("at least one gateway URL is needed");
        this.initialMs = opts.initialMs || 100;
        this.maxMs = opts.maxMs || 10_000;
        // Clients start on different gateways, spreading the load.
        this.next = Math.floor(opts.random() * urls.length);
    }
    /** The URL to dial now (each call moves on to the next one). */
    nextUrl() {
        const url = this.urls[this.next % this.urls.length];
        this.next = (this.next + 1) % this.urls.length;
        return url;
    }
    /**
     * The wait before the next dial: half of the current backoff plus a
     * random part of the other half, so that a reconnect storm spreads out.
     */
    nextDelay() {
        const backoff = Math.min(this.initialMs * 2 ** this.attempt, this.maxMs);
        this.attempt = Math.min(this.attempt + 1, 30);
        return Math.floor(backoff / 2 + this.opts.random() * (backoff / 2));
    }
    /** A connection came up (welcome): the next failure starts from the beginning. */
    connected() {
        this.attempt = 0;
    }
}
