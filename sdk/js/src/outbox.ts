// The outbox: every send from the moment the application makes it until it
// ends in its own `msg` (or an `accepted` naming its seq) or a `rejected`.
// It keeps client_msg_id and client_seq, so a resend is the same send (I3),
// and writes a conversation's sends in client_seq order, never one behind a
// refused earlier one (the gateway refuses those: protocol.md, "Refused
// sends and their order").

import type { Clock, Random } from "./clock.js";
import { SeqchatError } from "./errors.js";
import type { Control, MessageBody, Revision, SendFrame } from "./protocol.js";
import type { DeviceState } from "./store.js";

/**
 * queued: to be written on the current (or next) connection; written: on
 * the current connection, unanswered; accepted: the broker has it, its seq
 * comes in a msg; refused: `unavailable`/`rate_limited`, written again at
 * retryAt.
 */
export type OutboxState = "queued" | "written" | "accepted" | "refused";

export interface PendingSend {
  readonly conversationId: string;
  readonly clientMsgId: string;
  readonly clientSeq: number;
  readonly message?: MessageBody;
  readonly control?: Control;
  /** An edit (with message) or a recall of an earlier message. */
  readonly revision?: Revision;
  /** When the application made the send (clock ms). */
  readonly createdAt: number;
  state: OutboxState;
  /** Writes so far (across connections). */
  attempts: number;
  /** Refusals in a row; the retry wait grows with them. */
  refusals: number;
  /** For a refused send: when it may be written again (clock ms). */
  retryAt: number;
}

/** How a send ended. */
export type Settlement =
  | { kind: "sequenced"; send: PendingSend; seq: number }
  | { kind: "rejected"; send: PendingSend; error: SeqchatError };

export interface OutboxOptions {
  state: DeviceState;
  clock: Clock;
  random: Random;
  /** Wait after `unavailable` without a hint. Zero means 500 ms. */
  unavailableRetryMs?: number;
  /** Wait after `rate_limited` without a hint. Zero means 1000 ms. */
  rateLimitedRetryMs?: number;
  /** Cap of the growing wait of a send refused again and again. Zero means 5000 ms. */
  maxRetryMs?: number;
}

interface StoredSend {
  conversationId: string;
  clientMsgId: string;
  clientSeq: number;
  message?: MessageBody;
  control?: Control;
  revision?: Revision;
  createdAt: number;
}

/** What a send carries: a message, a membership change, or a revision (an edit has a message too). */
export type SendContent = { message: MessageBody } | { control: Control } | { revision: Revision; message?: MessageBody };

export class Outbox {
  private readonly sends = new Map<string, PendingSend>();
  /**
   * Sends that settled by their own entry (accepted on an earlier
   * connection) while this connection still owed them an answer, or while
   * they waited after a refusal. They stay in their conversation's line,
   * unseen by the application: if this connection refuses one, it is
   * written again before the sends behind it, because the gateway refuses
   * those until the refused one is resent. Dropped at its answer or with
   * the connection.
   */
  private readonly lingering = new Map<string, PendingSend>();
  /** Conversations in the order their first pending send was made. */
  private readonly byConversation = new Map<string, PendingSend[]>();
  private readonly unavailableRetryMs: number;
  private readonly rateLimitedRetryMs: number;
  private readonly maxRetryMs: number;

  constructor(private readonly opts: OutboxOptions) {
    this.unavailableRetryMs = opts.unavailableRetryMs || 500;
    this.rateLimitedRetryMs = opts.rateLimitedRetryMs || 1000;
    this.maxRetryMs = opts.maxRetryMs || 5000;
    this.restore();
  }

  /** Sends left by an earlier instance on the same store, all queued again. */
  private restore(): void {
    const stored = this.opts.state.outbox().filter(isStoredSend);
    stored.sort((a, b) => a.createdAt - b.createdAt || a.clientSeq - b.clientSeq);
    for (const s of stored) this.track({ ...s, state: "queued", attempts: 0, refusals: 0, retryAt: 0 });
  }

  /** Adds a send with the conversation's next client_seq and persists it first. */
  add(conversationId: string, content: SendContent, clientMsgId: string): PendingSend {
    if (this.sends.has(clientMsgId)) throw new Error(`client_msg_id ${clientMsgId} is already pending`);
    const clientSeq = this.opts.state.lastClientSeq(conversationId) + 1;
    const stored: StoredSend = { conversationId, clientMsgId, clientSeq, createdAt: this.opts.clock.now(), ...content };
    // The counter is saved before anything is written: a client_seq used
    // twice would make the sequencer take the new send for a repeat.
    this.opts.state.saveClientSeq(conversationId, clientSeq);
    this.opts.state.saveOutboxEntry(clientMsgId, stored);
    const send: PendingSend = { ...stored, state: "queued", attempts: 0, refusals: 0, retryAt: 0 };
    this.track(send);
    return send;
  }

  private track(send: PendingSend): void {
    this.sends.set(send.clientMsgId, send);
    const list = this.byConversation.get(send.conversationId) ?? [];
    list.push(send);
    list.sort((a, b) => a.clientSeq - b.clientSeq);
    this.byConversation.set(send.conversationId, list);
  }

  get(clientMsgId: string): PendingSend | undefined {
    return this.sends.get(clientMsgId);
  }

  get size(): number {
    return this.sends.size;
  }

  /** The pending sends of a conversation (or all), in client_seq order per conversation. */
  pending(conversationId?: string): PendingSend[] {
    const shown = (s: PendingSend) => !this.lingering.has(s.clientMsgId);
    if (conversationId !== undefined) return (this.byConversation.get(conversationId) ?? []).filter(shown);
    return [...this.byConversation.values()].flat().filter(shown);
  }

  /**
   * The sends to write now, each marked written: per conversation in
   * client_seq order, stopping at a refused send whose retry time has not
   * come (everything behind it would be refused for overtaking it).
   */
  due(now: number): SendFrame[] {
    const out: SendFrame[] = [];
    for (const list of this.byConversation.values()) {
      for (const s of list) {
        if (s.state === "written" || s.state === "accepted") continue;
        if (s.state === "refused" && s.retryAt > now) break;
        s.state = "written";
        s.attempts++;
        out.push(frameOf(s));
      }
    }
    return out;
  }

  /**
   * When due() will next have something to write: the earliest retry time
   * among the refused sends that head their conversation's line (one
   * behind another refused send waits for that one, whatever its own time).
   */
  nextRetryAt(): number | undefined {
    let at: number | undefined;
    for (const list of this.byConversation.values()) {
      const head = list.find((s) => s.state === "refused" || s.state === "queued");
      if (head === undefined) continue;
      const t = head.state === "queued" ? 0 : head.retryAt;
      if (at === undefined || t < at) at = t;
    }
    return at;
  }

  /**
   * The connection ended: whatever it did not settle is written again on
   * the next one. An accepted send too: if its msg was lost with the
   * connection, the resend's answer names its seq.
   */
  connectionLost(): void {
    for (const s of this.lingering.values()) this.unlist(s);
    this.lingering.clear();
    for (const s of this.sends.values()) {
      if (s.state === "written" || s.state === "accepted") s.state = "queued";
    }
  }

  /**
   * An `accepted` frame. With seq (a repeat whose original seq the gateway
   * knew) the send is done; without, its `msg` or a `rejected` follows,
   * live or in the catch-up after a reconnect (protocol.md, "The life of a
   * send").
   */
  accepted(clientMsgId: string, seq: number | undefined): Settlement | undefined {
    this.answered(clientMsgId);
    const s = this.sends.get(clientMsgId);
    if (s === undefined) return undefined;
    if (seq !== undefined) return this.settle({ kind: "sequenced", send: s, seq });
    s.state = "accepted";
    s.refusals = 0;
    return undefined;
  }

  /** The send's own entry came back in a `msg`. */
  sequenced(clientMsgId: string, seq: number): Settlement | undefined {
    const s = this.sends.get(clientMsgId);
    if (s === undefined) return undefined;
    if (s.state === "written" || s.state === "refused") {
      // The connection still owes it an answer, or refused it: it lingers.
      this.sends.delete(clientMsgId);
      this.lingering.set(clientMsgId, s);
      this.opts.state.deleteOutboxEntry(clientMsgId);
      return { kind: "sequenced", send: s, seq };
    }
    return this.settle({ kind: "sequenced", send: s, seq });
  }

  /** The connection answered a lingering send: nothing more is owed. */
  private answered(clientMsgId: string): void {
    const s = this.lingering.get(clientMsgId);
    if (s === undefined) return;
    this.lingering.delete(clientMsgId);
    this.unlist(s);
  }

  /** A `rejected` frame, or an error naming the send that will not succeed. */
  rejected(clientMsgId: string, error: SeqchatError): Settlement | undefined {
    this.answered(clientMsgId);
    const s = this.sends.get(clientMsgId);
    return s && this.settle({ kind: "rejected", send: s, error });
  }

  /**
   * An `unavailable` or `rate_limited` answer: written again after the
   * gateway's hint (or a default), growing with repeated refusals and
   * spread by up to half, so that refused clients do not come back at once.
   */
  refused(clientMsgId: string, code: "unavailable" | "rate_limited", retryAfterMs: number | undefined, now: number): void {
    const s = this.sends.get(clientMsgId) ?? this.lingering.get(clientMsgId);
    if (s === undefined || s.state === "accepted") return;
    const ahead = (this.byConversation.get(s.conversationId) ?? []).filter((x) => x.clientSeq < s.clientSeq && x.state === "refused");
    if (ahead.length > 0 && retryAfterMs === undefined) {
      // Refused because an earlier send of its conversation was (the
      // gateway refuses the ones behind it too): it goes again with that
      // one and adds no backoff of its own. Counted per send, every send
      // behind a refused one backed off further each round, and the
      // conversation's resends waited on the slowest.
      s.retryAt = Math.max(...ahead.map((x) => x.retryAt));
      s.state = "refused";
      return;
    }
    s.refusals++;
    let wait = retryAfterMs ?? (code === "rate_limited" ? this.rateLimitedRetryMs : this.unavailableRetryMs);
    if (s.refusals > 1) {
      // Refused again: back off past the hint (a retry storm costs the
      // gateway what the load does), doubling up to the cap.
      wait = Math.max(wait, Math.min(this.unavailableRetryMs * 2 ** Math.min(s.refusals - 2, 4), this.maxRetryMs));
    }
    s.retryAt = now + wait + Math.floor(this.opts.random() * (wait / 2 + 1));
    s.state = "refused";
  }

  private settle(st: Settlement): Settlement {
    const s = st.send;
    this.sends.delete(s.clientMsgId);
    this.unlist(s);
    this.opts.state.deleteOutboxEntry(s.clientMsgId);
    return st;
  }

  private unlist(s: PendingSend): void {
    const list = this.byConversation.get(s.conversationId);
    if (list === undefined) return;
    const rest = list.filter((x) => x !== s);
    if (rest.length > 0) this.byConversation.set(s.conversationId, rest);
    else this.byConversation.delete(s.conversationId);
  }
}

function frameOf(s: PendingSend): SendFrame {
  const f: SendFrame = { type: "send", conversation_id: s.conversationId, client_msg_id: s.clientMsgId, client_seq: s.clientSeq };
  if (s.control !== undefined) f.control = s.control;
  if (s.revision !== undefined) f.revision = s.revision;
  if (s.message !== undefined) f.message = s.message;
  return f;
}

function isStoredSend(v: unknown): v is StoredSend {
  if (typeof v !== "object" || v === null) return false;
  const s = v as Record<string, unknown>;
  return (
    typeof s.conversationId === "string" &&
    typeof s.clientMsgId === "string" &&
    typeof s.clientSeq === "number" &&
    typeof s.createdAt === "number" &&
    (s.revision !== undefined
      ? s.control === undefined && (s.message !== undefined) === ((s.revision as Revision).op === "edit")
      : (s.message !== undefined) !== (s.control !== undefined))
  );
}
