// @seqchat/client: the client side of the seqchat WebSocket protocol.
export { SeqchatClient } from "./client.js";
export { toEntry } from "./entries.js";
export { SeqchatError, isRetryableSendCode, isAuthCode } from "./errors.js";
export { MemoryStore, LocalStorageStore, DeviceState } from "./store.js";
export { errorCodes, isValidId, isConversationId, dmConversationId, groupConversationId, decodeServerFrame, encodeFrame, FrameDecodeError, } from "./protocol.js";
// The pure parts, for applications that drive their own transport.
export { ReorderBuffer } from "./reorder.js";
export { AckBatcher } from "./acks.js";
export { Outbox } from "./outbox.js";
export { SyncQueue } from "./syncs.js";
export { Reconnector } from "./backoff.js";
