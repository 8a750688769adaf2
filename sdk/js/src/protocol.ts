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
] as const;

export type ErrorCode = (typeof errorCodes)[number];

export interface MessageBody {
  content_type: string;
  body: string;
}

/** A membership change sent instead of a message. */
export type Control =
  | { op: "create_group"; title?: string; user_ids?: string[] }
  | { op: "join"; user_id: string }
  | { op: "leave" }
  | { op: "kick"; user_id: string };

export type MembershipKind = "created" | "joined" | "left" | "kicked";

/** An edit (with a message: the new content) or a recall of message target_seq. */
export interface Revision {
  op: "edit" | "recall";
  target_seq: number;
}

export interface MembershipEvent {
  kind: MembershipKind;
  user_ids: string[];
  title?: string;
}

// Client to gateway.

export interface HelloFrame {
  type: "hello";
  token: string;
  /** A position: the seq, or the seq with the epoch of its stream. */
  resume?: Record<string, number | ResumePosition>;
}

export interface ResumePosition {
  seq: number;
  epoch?: number;
}

export interface SendFrame {
  type: "send";
  conversation_id: string;
  client_msg_id: string;
  client_seq: number;
  message?: MessageBody;
  control?: Control;
  revision?: Revision;
}

export interface AckFrame {
  type: "ack";
  conversation_id: string;
  seq: number;
}

export interface SyncFrame {
  type: "sync";
  conversation_id: string;
  after_seq: number;
  limit?: number;
}

export interface PingFrame {
  type: "ping";
  id?: string;
}

/** The user has read the conversation up to seq (shared by its devices, never backwards). */
export interface ReadFrame {
  type: "read";
  conversation_id: string;
  seq: number;
}

/** Asks for the user's conversation list with unread counts. */
export interface ListConversationsFrame {
  type: "conversations";
}

export type ClientFrame = HelloFrame | SendFrame | AckFrame | SyncFrame | PingFrame | ReadFrame | ListConversationsFrame;

// Gateway to client.

export interface WelcomeFrame {
  type: "welcome";
  user_id: string;
  device_id: string;
  gateway_id: string;
  max_frame_bytes: number;
}

export interface AcceptedFrame {
  type: "accepted";
  conversation_id: string;
  client_msg_id: string;
  seq?: number;
}

export interface RejectedFrame {
  type: "rejected";
  conversation_id: string;
  client_msg_id: string;
  code: ErrorCode;
  message: string;
}

export interface MsgFrame {
  type: "msg";
  conversation_id: string;
  seq: number;
  /** The epoch of the conversation's stream seq belongs to; absent means 0. */
  epoch?: number;
  msg_id: string;
  sender_user_id: string;
  sender_device_id: string;
  client_msg_id?: string;
  sequenced_at_ms: number;
  predecessor_missing?: boolean;
  message?: MessageBody;
  event?: MembershipEvent;
  revision?: Revision;
  /** Read from history: message is the latest edit's content. */
  edited?: boolean;
  /** Read from history: the message (or the one an edit revised) was recalled; no content. */
  recalled?: boolean;
}

export interface SyncedFrame {
  type: "synced";
  conversation_id: string;
  up_to_seq: number;
  complete: boolean;
}

/**
 * The device holds the conversation at another epoch than its stream's:
 * drop what it holds of it; its entries follow again from seq 1 of epoch.
 */
export interface ResetFrame {
  type: "reset";
  conversation_id: string;
  epoch: number;
  message: string;
}

export interface PongFrame {
  type: "pong";
  id?: string;
}

export interface ErrorFrame {
  type: "error";
  code: ErrorCode;
  message: string;
  fatal: boolean;
  ref?: string;
  retry_after_ms?: number;
}

/** user_id has read the conversation up to seq. */
export interface ReceiptFrame {
  type: "receipt";
  conversation_id: string;
  user_id: string;
  seq: number;
}

/** One conversation of the user's list. */
export interface ConversationState {
  conversation_id: string;
  /** The last seq the user may see (as far as history has stored it). */
  last_seq: number;
  /** The user's read position (0: never read). */
  read_seq: number;
  /** Chat messages by other users after read_seq, in the user's membership periods. */
  unread: number;
}

export interface ConversationsFrame {
  type: "conversations";
  conversations: ConversationState[];
}

export type ServerFrame =
  | WelcomeFrame
  | AcceptedFrame
  | RejectedFrame
  | MsgFrame
  | SyncedFrame
  | ResetFrame
  | PongFrame
  | ErrorFrame
  | ReceiptFrame
  | ConversationsFrame;

const idPattern = /^[A-Za-z0-9._:@-]{1,128}$/;
const conversationPattern = /^(dm:[A-Za-z0-9._@-]{1,60}:[A-Za-z0-9._@-]{1,60}|g:[A-Za-z0-9._:@-]{1,126})$/;

/** Whether s is a valid user, device or client_msg_id. */
export function isValidId(s: string): boolean {
  return idPattern.test(s);
}

/** Whether s is a valid conversation id (`dm:<a>:<b>` or `g:<id>`). */
export function isConversationId(s: string): boolean {
  return conversationPattern.test(s);
}

/** The conversation id of the 1:1 chat between two users (ids sorted). */
export function dmConversationId(a: string, b: string): string {
  return a < b ? `dm:${a}:${b}` : `dm:${b}:${a}`;
}

/** The conversation id of a group. */
export function groupConversationId(group: string): string {
  return `g:${group}`;
}

export function encodeFrame(f: ClientFrame): string {
  return JSON.stringify(f);
}

/** A server frame the SDK cannot make sense of. */
export class FrameDecodeError extends Error {
  constructor(
    message: string,
    readonly raw: string,
  ) {
    super(message);
    this.name = "FrameDecodeError";
  }
}

type Obj = Record<string, unknown>;

// Field checks: a frame missing what its type requires is refused whole,
// so the state machines never see half a frame.
const isStr = (v: unknown): v is string => typeof v === "string";
const isInt = (v: unknown, min: number): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= min;
const isBool = (v: unknown): v is boolean => typeof v === "boolean";
const isCode = (v: unknown): v is ErrorCode => isStr(v) && (errorCodes as readonly string[]).includes(v);
const optional = (v: unknown, check: (v: unknown) => boolean) => v === undefined || check(v);

function isMessageBody(v: unknown): v is MessageBody {
  return typeof v === "object" && v !== null && isStr((v as Obj).content_type) && isStr((v as Obj).body);
}

function isEvent(v: unknown): v is MembershipEvent {
  if (typeof v !== "object" || v === null) return false;
  const e = v as Obj;
  return (
    ["created", "joined", "left", "kicked"].includes(e.kind as string) &&
    Array.isArray(e.user_ids) &&
    e.user_ids.every(isStr) &&
    optional(e.title, isStr)
  );
}

function isRevision(v: unknown): v is Revision {
  if (typeof v !== "object" || v === null) return false;
  const r = v as Obj;
  return (r.op === "edit" || r.op === "recall") && isInt(r.target_seq, 1);
}

function isConversationState(v: unknown): v is ConversationState {
  if (typeof v !== "object" || v === null) return false;
  const c = v as Obj;
  return isStr(c.conversation_id) && isInt(c.last_seq, 0) && isInt(c.read_seq, 0) && isInt(c.unread, 0);
}

// A msg carries a message, an event, a revision (an edit's with its
// content), or nothing but recalled (a recalled message read from history).
function hasOneBody(f: Obj): boolean {
  if (f.event !== undefined) return f.message === undefined && f.revision === undefined && isEvent(f.event);
  if (f.revision !== undefined) return isRevision(f.revision) && optional(f.message, isMessageBody);
  if (f.message !== undefined) return isMessageBody(f.message);
  return f.recalled === true;
}

const checks: Record<ServerFrame["type"], (f: Obj) => boolean> = {
  welcome: (f) => isStr(f.user_id) && isStr(f.device_id) && isStr(f.gateway_id) && isInt(f.max_frame_bytes, 1),
  accepted: (f) => isStr(f.conversation_id) && isStr(f.client_msg_id) && optional(f.seq, (v) => isInt(v, 1)),
  rejected: (f) => isStr(f.conversation_id) && isStr(f.client_msg_id) && isCode(f.code) && isStr(f.message),
  msg: (f) =>
    isStr(f.conversation_id) &&
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
export function decodeServerFrame(text: string): ServerFrame {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new FrameDecodeError("frame is not JSON", text);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new FrameDecodeError("frame is not a JSON object", text);
  }
  const f = v as Obj;
  const check = checks[f.type as ServerFrame["type"]];
  if (!isStr(f.type) || !Object.hasOwn(checks, f.type) || check === undefined) {
    throw new FrameDecodeError(`unknown frame type ${JSON.stringify(f.type)}`, text);
  }
  if (!check(f)) {
    throw new FrameDecodeError(`malformed ${f.type} frame`, text);
  }
  return f as unknown as ServerFrame;
}
