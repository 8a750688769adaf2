// What the application gets for each entry of a conversation.

import type { MembershipKind, MessageBody, MsgFrame, Revision } from "./protocol.js";

/** One entry of a conversation, as the application gets it: in seq order, once. */
export interface ChatEntry {
  conversationId: string;
  seq: number;
  msgId: string;
  senderUserId: string;
  senderDeviceId: string;
  clientMsgId: string | undefined;
  sequencedAtMs: number;
  /** The sender device's previous send never arrived within the hold window. */
  predecessorMissing: boolean;
  message: MessageBody | undefined;
  event: { kind: MembershipKind; userIds: string[]; title?: string } | undefined;
  /** An edit (message: the new content) or a recall of an earlier message: apply it to that one. */
  revision: { op: Revision["op"]; targetSeq: number } | undefined;
  /** From history: message is the latest edit (edited), or the message was recalled (no message). */
  edited: boolean;
  recalled: boolean;
  /** Sent by this device: it replaces the pending send with the same clientMsgId. */
  own: boolean;
}

export interface MembershipChange {
  conversationId: string;
  seq: number;
  kind: MembershipKind;
  userIds: string[];
  title?: string;
  /** The change adds or removes this client's own user. */
  me: boolean;
}

/** The application's view of a msg frame. */
export function toEntry(f: MsgFrame, own: boolean): ChatEntry {
  return {
    conversationId: f.conversation_id,
    seq: f.seq,
    msgId: f.msg_id,
    senderUserId: f.sender_user_id,
    senderDeviceId: f.sender_device_id,
    clientMsgId: f.client_msg_id,
    sequencedAtMs: f.sequenced_at_ms,
    predecessorMissing: f.predecessor_missing ?? false,
    message: f.message,
    event:
      f.event === undefined
        ? undefined
        : { kind: f.event.kind, userIds: f.event.user_ids, ...(f.event.title !== undefined ? { title: f.event.title } : {}) },
    revision: f.revision === undefined ? undefined : { op: f.revision.op, targetSeq: f.revision.target_seq },
    edited: f.edited ?? false,
    recalled: f.recalled ?? false,
    own,
  };
}
