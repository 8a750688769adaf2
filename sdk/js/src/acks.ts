// Batched cumulative acknowledgements: one ack per conversation for many
// delivered entries, sent after a short delay or once enough piled up.

import type { AckFrame } from "./protocol.js";
import type { Clock, TimerHandle } from "./clock.js";

export interface AckBatcherOptions {
  clock: Clock;
  /** Sends the batch; false if it could not (no connection): kept for later. */
  send: (acks: AckFrame[]) => boolean;
  /** Called with every flushed batch's positions (to persist them). */
  persist?: (positions: Map<string, number>) => void;
  /** Delay before a batch goes out. Zero means 200 ms. */
  delayMs?: number;
  /** A batch goes out at once when this many deliveries wait. Zero means 100. */
  maxPending?: number;
}

export class AckBatcher {
  private readonly pending = new Map<string, number>();
  private count = 0;
  private timer: TimerHandle | undefined;
  private readonly delayMs: number;
  private readonly maxPending: number;

  constructor(private readonly opts: AckBatcherOptions) {
    this.delayMs = opts.delayMs || 200;
    this.maxPending = opts.maxPending || 100;
  }

  /** Records that seq of conversationId was delivered to the application. */
  delivered(conversationId: string, seq: number): void {
    if (seq <= (this.pending.get(conversationId) ?? 0)) return;
    this.pending.set(conversationId, seq);
    this.count++;
    if (this.count >= this.maxPending) {
      this.flush();
    } else if (this.timer === undefined) {
      this.timer = this.opts.clock.setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, this.delayMs);
    }
  }

  /** Sends what waits now; positions are persisted even when sending fails. */
  flush(): void {
    if (this.timer !== undefined) {
      this.opts.clock.clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.pending.size === 0) return;
    const batch = new Map(this.pending);
    this.opts.persist?.(batch);
    const frames: AckFrame[] = [...batch].map(([conversation_id, seq]) => ({ type: "ack", conversation_id, seq }));
    if (this.opts.send(frames)) {
      this.pending.clear();
      this.count = 0;
    }
  }

  /**
   * Forgets unsent acks: a new connection's hello carries the delivered
   * positions as resume points, which acknowledges them.
   */
  resumed(): void {
    if (this.pending.size > 0) this.opts.persist?.(new Map(this.pending));
    this.pending.clear();
    this.count = 0;
    if (this.timer !== undefined) {
      this.opts.clock.clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  /** Forgets the conversation's unsent ack (a reset: it is of another epoch). */
  forget(conversationId: string): void {
    this.pending.delete(conversationId);
  }

  stop(): void {
    this.resumed();
  }
}
