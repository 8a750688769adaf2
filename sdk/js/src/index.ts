// @seqchat/client: the client side of the seqchat WebSocket protocol.

export { SeqchatClient } from "./client.js";
export type { ClientEvents, ClientOptions, ConnectionState, SendHandle } from "./client.js";
export { toEntry } from "./entries.js";
export type { ChatEntry, MembershipChange } from "./entries.js";
export { SeqchatError, isRetryableSendCode, isAuthCode } from "./errors.js";
export type { LocalErrorCode } from "./errors.js";
export { MemoryStore, LocalStorageStore, DeviceState } from "./store.js";
export type { Store, WebStorage } from "./store.js";
export type { PendingSend, OutboxState, SendContent, Settlement } from "./outbox.js";
export type { SyncAnswer } from "./syncs.js";
export type { Clock, Random } from "./clock.js";
export type { WebSocketConstructor, WebSocketLike } from "./websocket.js";
export {
  errorCodes,
  isValidId,
  isConversationId,
  dmConversationId,
  groupConversationId,
  decodeServerFrame,
  encodeFrame,
  FrameDecodeError,
} from "./protocol.js";
export type * from "./protocol.js";
// The pure parts, for applications that drive their own transport.
export { ReorderBuffer } from "./reorder.js";
export type { Gap } from "./reorder.js";
export { AckBatcher } from "./acks.js";
export { Outbox } from "./outbox.js";
export { SyncQueue } from "./syncs.js";
export { Reconnector } from "./backoff.js";
