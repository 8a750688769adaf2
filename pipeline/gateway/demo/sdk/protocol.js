// The frames of the WebSocket client protocol, version 1
// (schemas/wsprotocol/protocol.md). One definition of each wire type: the
// rest of the SDK speaks these.
/** Stable codes of `error` and `rejected` frames. */
export const errorCodes = [
    "bad_frame",
    "unknown_type",
    "invalid",
    "frame_too_large",
    "hello_required",
    "token_invalid",
    "token_expired",
    "not_member",
    "unknown_conversation",
    "already_member",
    "rate_limited",
    "slow_consumer",
    "unavailable",
    "too_many_connections",
    "internal",
    "not_allowed",
    "too_old",
];
const idPattern = /^[A-Za-z0-9._:@-]{1,128}$/;
const conversationPattern = /^(dm:[A-Za-z0-9._@-]{1,60}:[A-Za-z0-9._@-]{1,60}|g:[A-Za-z0-9._:@-]{1,126})$/;
/** Whether s is a valid user, device or client_msg_id. */
export function isValidId(s) {
    return idPattern.test(s);
}
/** Whether s is a valid conversation id (`dm:<a>:<b>` or `g:<id>`). */
export function isConversationId(s) {
    return conversationPattern.test(s);
}
/** The conversation id of the 1:1 chat between two users (ids sorted). */
export function dmConversationId(a, b) {
    return a < b ? `dm:${a}:${b}` : `dm:${b}:${a}`;
}
/** The conversation id of a group. */
export function groupConversationId(group) {
    return `g:${group}`;
}
export function encodeFrame(f) {
    return JSON.stringify(f);
}
/** A server frame the SDK cannot make sense of. */
export class FrameDecodeError extends Error {
    raw;
    constructor(message, raw) {
        super(message);
        this.raw = raw;
        this.name = "FrameDecodeError";
    }
}
// Field checks: a frame missing what its type requires is refused whole,
// so the state machines never see half a frame.
const isStr = (v) => typeof v === "string";
const isInt = (v, min) => typeof v === "number" && Number.isSafeInteger(v) && v >= min;
const isBool = (v) => typeof v === "boolean";
const isCode = (v) => isStr(v) && errorCodes.includes(v);
const optional = (v, check) => v === undefined || check(v);
function isMessageBody(v) {
    return typeof v === "object" && v !== null && isStr(v.content_type) && isStr(v.body);
}
function isEvent(v) {
    if (typeof v !== "object" || v === null)
        return false;
    const e = v;
    return (["created", "joined", "left", "kicked"].includes(e.kind) &&
        Array.isArray(e.user_ids) &&
        e.user_ids.every(isStr) &&
        optional(e.title, isStr));
}
function isRevision(v) {
    if (typeof v !== "object" || v === null)
        return false;
    const r = v;
    return (r.op === "edit" || r.op === "recall") && isInt(r.target_seq, 1);
}
function isConversationState(v) {
    if (typeof v !== "object" || v === null)
        return false;
    const c = v;
    return isStr(c.conversation_id) && isInt(c.last_seq, 0) && isInt(c.read_seq, 0) && isInt(c.unread, 0);
}
// A msg carries a message, an event, a revision (an edit's with its
// content), or nothing but recalled (a recalled message read from history).
function hasOneBody(f) {
    if (f.event !== undefined)
        return f.message === undefined && f.revision === undefined && isEvent(f.event);
    if (f.revision !== undefined)
        return isRevision(f.revision) && optional(f.message, isMessageBody);
    if (f.message !== undefined)
        return isMessageBody(f.message);
    return f.recalled === true;
}
const checks = {
    welcome: (f) => isStr(f.user_id) && isStr(f.device_id) && isStr(f.gateway_id) && isInt(f.max_frame_bytes, 1),
    accepted: (f) => isStr(f.conversation_id) && isStr(f.client_msg_id) && optional(f.seq, (v) => isInt(v, 1)),
    rejected: (f) => isStr(f.conversation_id) && isStr(f.client_msg_id) && isCode(f.code) && isStr(f.message),
    msg: (f) => isStr(f.conversation_id) &&
        isInt(f.seq, 1) &&
        optional(f.epoch, (v) => isInt(v, 1)) &&
        isStr(f.msg_id) &&
        isStr(f.sender_user_id) &&
        isStr(f.sender_device_id) &&
        optional(f.client_msg_id, isStr) &&
        isInt(f.sequenced_at_ms, 0) &&
        optional(f.predecessor_missing, isBool) &&
        optional(f.edited, isBool) &&
        optional(f.recalled, isBool) &&
        hasOneBody(f),
    synced: (f) => isStr(f.conversation_id) && isInt(f.up_to_seq, 0) && isBool(f.complete),
    reset: (f) => isStr(f.conversation_id) && isInt(f.epoch, 1) && isStr(f.message),
    pong: (f) => optional(f.id, isStr),
    receipt: (f) => isStr(f.conversation_id) && isStr(f.user_id) && isInt(f.seq, 1),
    conversations: (f) => Array.isArray(f.conversations) && f.conversations.every(isConversationState),
    error: (f) => isCode(f.code) && isStr(f.message) && isBool(f.fatal) && optional(f.ref, isStr) && optional(f.retry_after_ms, (v) => isInt(v, 1)),
};
/** Decodes one text message from the gateway; throws FrameDecodeError. */
export function decodeServerFrame(text) {
    let v;
    try {
        v = JSON.parse(text);
    }
    catch {
        throw new FrameDecodeError("frame is not JSON", text);
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
        throw new FrameDecodeError("frame is not a JSON object", text);
    }
    const f = v;
    const check = checks[f.type];
    if (!isStr(f.type) || !Object.hasOwn(checks, f.type) || check === undefined) {
        throw new FrameDecodeError(`unknown frame type ${JSON.stringify(f.type)}`, text);
    }
    if (!check(f)) {
        throw new FrameDecodeError(`malformed ${f.type} frame`, text);
    }
    return f;
}
