// The demo chat page, on the TypeScript SDK (sdk/js, compiled into ./sdk by
// `make demo-sdk`). One pane is one device: a SeqchatClient with its own
// store namespace. ?pair=alice,bob shows two devices side by side.
import { SeqchatClient, LocalStorageStore, dmConversationId, groupConversationId, toEntry } from "/demo/sdk/index.js";

const params = new URLSearchParams(location.search);
const wsURL = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
const pending = { queued: "pending", written: "sending", accepted: "accepted", refused: "retrying" };

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function clock(ms) {
  const d = new Date(ms);
  return d.toLocaleDateString() === new Date().toLocaleDateString() ? d.toLocaleTimeString() : d.toLocaleString();
}

// A device id per (view, user), kept across reloads so the outbox and
// positions the SDK stored under it are found again.
function deviceFor(view, user) {
  const key = `seqchat-demo/device/${view}/${user}`;
  let d = localStorage.getItem(key);
  if (!d) {
    d = `${view}-${Math.random().toString(36).slice(2, 8)}`;
    localStorage.setItem(key, d);
  }
  return d;
}

// What the page shows of a device's conversations, kept in localStorage:
// the SDK resumes after what was delivered, so what was shown before a
// reload is the page's to keep.
class Shown {
  constructor(key) {
    this.key = key;
    const s = JSON.parse(localStorage.getItem(key) || "{}");
    this.convs = new Map(Object.entries(s.convs || {}));
    this.entries = new Map(Object.entries(s.entries || {}).map(([c, list]) => [c, new Map(list.map((e) => [e.seq, e]))]));
    this.failed = new Map(Object.entries(s.failed || {}));
  }
  conv(id) {
    let c = this.convs.get(id);
    if (!c) {
      // readSeq: this user's read position; reads: the other members' (from
      // receipts); server*: the unread count history gave at lastSeq.
      c = { id, title: "", lastSeq: 0, readSeq: 0, member: id.startsWith("dm:"), reads: {}, serverLast: 0, serverUnread: 0 };
      this.convs.set(id, c);
    }
    return c;
  }
  list(id) {
    let m = this.entries.get(id);
    if (!m) this.entries.set(id, (m = new Map()));
    return m;
  }
  save() {
    const entries = {};
    for (const [c, m] of this.entries) entries[c] = [...m.values()].sort((a, b) => a.seq - b.seq).slice(-300);
    localStorage.setItem(this.key, JSON.stringify({ convs: Object.fromEntries(this.convs), entries, failed: Object.fromEntries(this.failed) }));
  }
}

class Pane {
  constructor(root, view) {
    this.root = root;
    this.view = view;
    this.$ = (sel) => root.querySelector(sel);
    this.$(".login").onsubmit = (ev) => {
      ev.preventDefault();
      this.login(this.$(".login [name=user]").value.trim());
    };
  }

  async login(user, open) {
    if (!user) return;
    this.user = user;
    this.device = deviceFor(this.view, user);
    if (this.view === "web") localStorage.setItem("seqchat-demo/user", user);
    const ns = `seqchat-demo/${user}/${this.device}`;
    this.shown = new Shown(ns + "/shown");
    // Sends whose refusal the page handles itself (joining a group that
    // turns out not to exist yet): not shown as failed.
    this.quiet = new Set();
    this.root.dataset.user = user;
    this.$(".login").hidden = true;
    this.$(".chat").hidden = false;
    this.$(".me").textContent = `${user} / ${this.device}`;
    const pane = this;
    // The SDK dials through this class, so "drop connection" can close the
    // socket under it the way a network would, and "go offline" can refuse
    // to dial.
    class TrackedWebSocket extends WebSocket {
      constructor(url, protocols) {
        if (pane.offline) throw new Error("offline (the demo's switch)");
        super(url, protocols);
        pane.socket = this;
      }
    }
    const client = new SeqchatClient({
      urls: [wsURL],
      token: async () => {
        const r = await fetch(`/demo/token?user=${encodeURIComponent(user)}&device=${encodeURIComponent(this.device)}`);
        if (!r.ok) throw new Error(await r.text());
        return (await r.text()).trim();
      },
      WebSocket: TrackedWebSocket,
      store: new LocalStorageStore(),
      namespace: ns,
    });
    this.client = client;
    this.wire(client);
    this.$(".drop").onclick = () => this.socket?.close(4000, "dropped by the demo");
    this.$(".offline").onclick = (ev) => {
      this.offline = !this.offline;
      ev.target.textContent = this.offline ? "go online" : "go offline";
      if (this.offline) this.socket?.close(4000, "offline (the demo's switch)");
    };
    this.$(".logout").onclick = () => {
      client.close();
      localStorage.removeItem("seqchat-demo/user");
      location.href = "/";
    };
    this.$(".new-dm").onsubmit = (ev) => {
      ev.preventDefault();
      const other = ev.target.user.value.trim();
      if (other && other !== user) this.open(dmConversationId(user, other));
      ev.target.reset();
    };
    this.$(".new-group").onsubmit = (ev) => {
      ev.preventDefault();
      const g = ev.target.group.value.trim();
      if (g) this.enterGroup(groupConversationId(g));
      ev.target.reset();
    };
    this.$(".compose").onsubmit = (ev) => {
      ev.preventDefault();
      const text = ev.target.text.value;
      if (text && this.current) this.track(client.send(this.current, text), text);
      ev.target.reset();
    };
    this.$(".kick").onsubmit = (ev) => {
      ev.preventDefault();
      const who = ev.target.user.value.trim();
      const kick = ev.submitter && ev.submitter.name === "kick";
      if (who && this.current) this.track(kick ? client.kick(this.current, who) : client.join(this.current, who), `${kick ? "kick" : "add"} ${who}`);
      ev.target.reset();
    };
    this.$(".leave").onclick = () => this.current && this.track(client.leave(this.current), "leave");
    this.$(".older").onclick = () => this.older();
    this.renderConvs();
    if (open?.startsWith("g:")) this.enterGroup(open);
    else if (open || this.shown.convs.size) this.open(open || this.shown.convs.keys().next().value);
    await client.connect();
  }

  wire(client) {
    client.on("state", (s) => {
      const st = this.$(".state");
      st.dataset.state = s;
      st.textContent = { open: "online", connecting: "connecting", reconnecting: "reconnecting…", closed: "offline" }[s];
      if (s !== "open") this.event(`connection ${s}`);
    });
    client.on("welcome", (w) => {
      client.conversations().then((list) => this.listed(list), (e) => this.event(`conversations: ${e.code || e}`));
      const at = [...this.shown.convs.values()].map((c) => `${c.id}@${client.delivered(c.id)}`).join(", ");
      this.event(`welcome from ${w.gateway_id}; resuming ${at || "nothing yet"}`, "resume");
    });
    client.on("synced", (s) => this.event(`synced ${s.conversationId} up to ${s.upToSeq}${s.complete ? "" : " (history behind)"}`, "resume"));
    client.on("filling", (f) => this.event(`gap in ${f.conversationId} after ${f.afterSeq}: filling from history`, "fill"));
    client.on("error", (e) => this.event(`error ${e.code}: ${e.message}`));
    client.on("pending", (p) => p.conversationId === this.current && this.renderLog());
    client.on("settled", (s) => {
      if (s.kind !== "rejected" || this.quiet.delete(s.send.clientMsgId)) return;
      const list = this.shown.failed.get(s.send.conversationId) || [];
      list.push({ clientMsgId: s.send.clientMsgId, text: describeSend(s.send), code: s.error.code, why: s.error.message, at: Date.now() });
      this.shown.failed.set(s.send.conversationId, list.slice(-20));
      this.shown.save();
      this.event(`rejected ${s.error.code}: ${s.error.message}`);
      if (s.send.conversationId === this.current) this.renderLog();
    });
    client.on("message", (e) => this.receive(e));
    // The conversation's stream was rebuilt (a new epoch): what the page
    // showed of it is of the old one; it comes again from seq 1.
    client.on("reset", (r) => {
      const c = this.shown.conv(r.conversationId);
      Object.assign(c, { lastSeq: 0, readSeq: 0, reads: {}, serverLast: 0, serverUnread: 0, oldest: 0 });
      this.shown.entries.delete(r.conversationId);
      this.shown.save();
      this.event(`reset ${r.conversationId}: its history was rebuilt (epoch ${r.epoch}); showing it again from seq 1`, "fill");
      this.renderConvs();
      if (r.conversationId === this.current) this.renderLog();
    });
    client.on("receipt", (r) => {
      const c = this.shown.conv(r.conversationId);
      if (r.userId === this.user) c.readSeq = Math.max(c.readSeq, r.seq); // read on another device
      else (c.reads ||= {})[r.userId] = Math.max(c.reads[r.userId] || 0, r.seq);
      this.shown.save();
      this.renderConvs();
      if (r.conversationId === this.current) this.renderLog();
    });
  }

  receive(e) {
    const c = this.shown.conv(e.conversationId);
    const list = this.shown.list(e.conversationId);
    if (list.has(e.seq)) return;
    list.set(e.seq, e);
    c.lastSeq = Math.max(c.lastSeq, e.seq);
    if (e.event) {
      if (e.event.title) c.title = e.event.title;
      if (e.event.userIds.includes(this.user)) c.member = e.event.kind === "created" || e.event.kind === "joined";
    }
    if (e.revision) {
      const target = list.get(e.revision.targetSeq);
      if (target && e.revision.op === "edit") Object.assign(target, { message: e.message, edited: true });
      if (target && e.revision.op === "recall") Object.assign(target, { message: undefined, recalled: true });
    }
    if (e.conversationId === this.current && document.visibilityState === "visible") this.read(c);
    this.shown.save();
    this.renderConvs();
    if (e.conversationId === this.current) this.renderLog();
  }

  // A group: join it; a group nobody created yet is created instead.
  async enterGroup(conv) {
    this.open(conv);
    if (this.shown.conv(conv).member) return;
    const join = this.client.join(conv, this.user);
    this.quiet.add(join.clientMsgId);
    try {
      await join.done;
    } catch (err) {
      if (err.code === "unknown_conversation") this.track(this.client.createGroup(conv, conv.slice(2)), "create group");
      else if (err.code !== "already_member") this.event(`join ${conv}: ${err.code}`);
    } finally {
      this.quiet.delete(join.clientMsgId);
    }
  }

  // track shows a send's end in the event list (its state is in the log meanwhile).
  track(handle, what) {
    handle.done.then((seq) => this.event(`${what}: seq ${seq}`)).catch(() => {});
  }

  // listed takes history's view of the user's conversations: those this
  // device never showed, and unread counts of what it did not receive.
  listed(list) {
    for (const s of list) {
      const c = this.shown.conv(s.conversation_id);
      c.readSeq = Math.max(c.readSeq, s.read_seq);
      c.serverLast = s.last_seq;
      c.serverUnread = s.unread;
      c.listed = true; // history knows the user there: opening it needs no join
    }
    this.shown.save();
    this.renderConvs();
  }

  // read marks what the conversation shows as read, for all the user's
  // devices and the other members.
  read(c) {
    const top = Math.max(c.lastSeq, c.serverLast || 0);
    if (top > c.readSeq) this.client.markRead(c.id, top);
    c.readSeq = Math.max(c.readSeq, top);
  }

  open(conv) {
    this.current = conv;
    const c = this.shown.conv(conv);
    this.read(c);
    this.shown.save();
    const group = conv.startsWith("g:");
    this.$(".title").textContent = group ? `${c.title || conv.slice(2)} (${conv})` : `${this.other(conv)} (${conv})`;
    this.$(".kick").hidden = !group;
    this.$(".leave").hidden = !group;
    this.$(".compose").hidden = false;
    this.renderConvs();
    this.renderLog();
  }

  async older() {
    const list = this.shown.list(this.current);
    const first = Math.min(...list.keys());
    if (!(first > 1)) return;
    const conv = this.current;
    const page = await this.client.history(conv, Math.max(0, first - 51), first - 1 - Math.max(0, first - 51));
    for (const f of page.entries) if (!list.has(f.seq)) list.set(f.seq, toEntry(f, f.sender_user_id === this.user && f.sender_device_id === this.device));
    // Nothing older is visible to this user (it joined later): stop offering more.
    if (Math.min(...list.keys()) === first) this.shown.conv(conv).oldest = first;
    this.shown.save();
    this.renderLog();
  }

  other(conv) {
    const [, a, b] = conv.split(":");
    return a === this.user ? b : a;
  }

  // unread: what history counted after the read position (up to what it
  // had then), and the messages of others that came since.
  unread(c) {
    let n = c.readSeq < (c.serverLast || 0) ? c.serverUnread : 0;
    const from = Math.max(c.readSeq, c.serverLast || 0);
    for (const e of this.shown.list(c.id).values()) if (e.seq > from && e.message && e.senderUserId !== this.user) n++;
    return n;
  }

  // readMark says who has read one of this user's messages.
  readMark(c, seq) {
    const readers = Object.entries(c.reads || {}).filter(([, s]) => s >= seq).map(([u]) => u);
    if (c.id.startsWith("dm:")) return readers.length ? "read" : "";
    return readers.length ? `read by ${readers.length}` : "";
  }

  renderConvs() {
    const ul = this.$(".convs");
    ul.replaceChildren();
    for (const c of [...this.shown.convs.values()].sort((a, b) => a.id.localeCompare(b.id))) {
      const li = el("li", c.id === this.current ? "open" : "");
      li.dataset.conv = c.id;
      li.append(el("span", "name", c.id.startsWith("g:") ? `# ${c.title || c.id.slice(2)}` : `@ ${this.other(c.id)}`));
      li.append(el("span", "unread", c.id === this.current ? "" : String(this.unread(c) || "")));
      li.onclick = () => (c.id.startsWith("g:") && !c.member && !c.listed ? this.enterGroup(c.id) : this.open(c.id));
      ul.append(li);
    }
  }

  renderLog() {
    const log = this.$(".log");
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.replaceChildren();
    const entries = [...this.shown.list(this.current).values()].sort((a, b) => a.seq - b.seq);
    const c = this.shown.conv(this.current);
    const oldest = c.oldest || 1;
    const readers = Object.entries(c.reads || {}).filter(([, s]) => s > 0);
    this.$(".read-by").textContent = readers.map(([u, s]) => `${u} read up to #${s}`).join(", ");
    this.$(".older").hidden = !(entries.length && entries[0].seq > oldest);
    for (const e of entries) {
      const li = el("li", [e.message || e.recalled ? "msg" : "event", e.senderUserId === this.user ? "own" : "", e.recalled ? "recalled" : ""].join(" ").trim());
      li.dataset.seq = e.seq;
      li.append(el("span", "seq", `#${e.seq}`), el("span", "who", e.senderUserId), el("span", "text", entryText(e)));
      if (e.edited) li.append(el("span", "mark", "(edited)"));
      const mark = e.senderUserId === this.user && e.message ? this.readMark(c, e.seq) : "";
      if (mark) li.append(el("span", "mark read", mark));
      li.append(el("span", "time", clock(e.sequencedAtMs)));
      log.append(li);
    }
    for (const f of this.shown.failed.get(this.current) || []) {
      const li = el("li", "failed");
      li.dataset.clientMsgId = f.clientMsgId;
      li.append(el("span", "seq", "✕"), el("span", "who", this.user), el("span", "text", f.text), el("span", "mark", `failed: ${f.code} (${f.why})`));
      log.append(li);
    }
    for (const p of this.client.pending(this.current)) {
      const li = el("li", "pending own");
      li.dataset.clientMsgId = p.clientMsgId;
      li.append(el("span", "seq", "…"), el("span", "who", this.user), el("span", "text", describeSend(p)), el("span", "mark", pending[p.state]));
      log.append(li);
    }
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  event(text, cls) {
    const ol = this.$(".events");
    const li = el("li", cls || "", `${new Date().toLocaleTimeString()} ${text}`);
    ol.append(li);
    while (ol.children.length > 200) ol.firstChild.remove();
    ol.scrollTop = ol.scrollHeight;
  }
}

function entryText(e) {
  if (e.recalled) return "message recalled";
  if (e.revision) return e.revision.op === "edit" ? `edited #${e.revision.targetSeq}: ${e.message ? e.message.body : ""}` : `recalled #${e.revision.targetSeq}`;
  if (e.message) return e.message.body;
  const ev = e.event;
  return ev.kind === "created" ? `created the group${ev.title ? ` “${ev.title}”` : ""} with ${ev.userIds.join(", ")}` : `${ev.kind} ${ev.userIds.join(", ")}`;
}

function describeSend(s) {
  if (s.message) return s.message.body;
  if (s.control) return `(${s.control.op}${s.control.user_id ? " " + s.control.user_id : ""})`;
  if (s.revision) return `(${s.revision.op} #${s.revision.target_seq})`;
  return "";
}

function mount(view) {
  const pane = document.getElementById("pane").content.firstElementChild.cloneNode(true);
  document.getElementById("panes").append(pane);
  return new Pane(pane, view);
}

// ?user=alice[&conv=g:x] logs in (and opens or joins conv); ?pair=alice,bob
// shows two devices; otherwise the last user of this browser comes back.
const conv = params.get("conv") || undefined;
if (params.get("pair")) {
  for (const user of params.get("pair").split(",").slice(0, 2)) mount("pair").login(user.trim(), conv);
} else {
  const user = params.get("user") || localStorage.getItem("seqchat-demo/user");
  const pane = mount("web");
  if (user) pane.login(user, conv);
}
