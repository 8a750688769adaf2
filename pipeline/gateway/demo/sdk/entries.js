// What the application gets for each entry of a conversation.
/** The application's view of a msg frame. */
export function toEntry(f, own) {
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
        event: f.event === undefined
            ? undefined
            : { kind: f.event.kind, userIds: f.event.user_ids, ...(f.event.title !== undefined ? { title: f.event.title } : {}) },
        revision: f.revision === undefined ? undefined : { op: f.revision.op, targetSeq: f.revision.target_seq },
        edited: f.edited ?? false,
        recalled: f.recalled ?? false,
        own,
    };
}
