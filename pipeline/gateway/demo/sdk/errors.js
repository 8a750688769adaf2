/**
 * An error with a stable code: one of the protocol's (from an `error` or
 * `rejected` frame) or one of the SDK's own (LocalErrorCode).
 */
export class SeqchatError extends Error {
    code;
    /** The gateway closes the connection after this error. */
    fatal;
    /** The frame it answers (a client_msg_id or ping id), when known. */
    ref;
    /** When a refused send may succeed, from the gateway's hint. */
    retryAfterMs;
    conversationId;
    constructor(code, message, opts = {}) {
        super(message);
        this.name = "SeqchatError";
        this.code = code;
        this.fatal = opts.fatal ?? false;
        this.ref = opts.ref;
        this.retryAfterMs = opts.retryAfterMs;
        this.conversationId = opts.conversationId;
    }
    static fromErrorFrame(f) {
        return new SeqchatError(f.code, f.message, { fatal: f.fatal, ref: f.ref, retryAfterMs: f.retry_after_ms });
    }
    static fromRejected(f) {
        return new SeqchatError(f.code, f.message, { ref: f.client_msg_id, conversationId: f.conversation_id });
    }
}
/** Codes after which a send is written again with the same ids. */
export function isRetryableSendCode(code) {
    return code === "unavailable" || code === "rate_limited";
}
/** Codes after which reconnecting with the same token cannot help. */
export function isAuthCode(code) {
    return code === "token_invalid" || code === "token_expired";
}
