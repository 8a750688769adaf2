import type { ErrorCode, ErrorFrame, RejectedFrame } from "./protocol.js";

/** Codes the SDK itself raises, beside the protocol's. */
export type LocalErrorCode = "client_closed" | "bad_server_frame" | "sync_timeout";

/**
 * An error with a stable code: one of the protocol's (from an `error` or
 * `rejected` frame) or one of the SDK's own (LocalErrorCode).
 */
export class SeqchatError extends Error {
  readonly code: ErrorCode | LocalErrorCode;
  /** The gateway closes the connection after this error. */
  readonly fatal: boolean;
  /** The frame it answers (a client_msg_id or ping id), when known. */
  readonly ref: string | undefined;
  /** When a refused send may succeed, from the gateway's hint. */
  readonly retryAfterMs: number | undefined;
  readonly conversationId: string | undefined;

  constructor(
    code: ErrorCode | LocalErrorCode,
    message: string,
    opts: { fatal?: boolean; ref?: string; retryAfterMs?: number; conversationId?: string } = {},
  ) {
    super(message);
    this.name = "SeqchatError";
    this.code = code;
    this.fatal = opts.fatal ?? false;
    this.ref = opts.ref;
    this.retryAfterMs = opts.retryAfterMs;
    this.conversationId = opts.conversationId;
  }

  static fromErrorFrame(f: ErrorFrame): SeqchatError {
    return new SeqchatError(f.code, f.message, { fatal: f.fatal, ref: f.ref, retryAfterMs: f.retry_after_ms });
  }

  static fromRejected(f: RejectedFrame): SeqchatError {
    return new SeqchatError(f.code, f.message, { ref: f.client_msg_id, conversationId: f.conversation_id });
  }
}

/** Codes after which a send is written again with the same ids. */
export function isRetryableSendCode(code: string): boolean {
  return code === "unavailable" || code === "rate_limited";
}

/** Codes after which reconnecting with the same token cannot help. */
export function isAuthCode(code: string): boolean {
  return code === "token_invalid" || code === "token_expired";
}
