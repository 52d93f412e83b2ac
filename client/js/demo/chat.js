// Chat room page: the Ratchet tutorial's chat on Herald. Messages are publications that the
// browser publishes itself (a `publish` frame to a channel of --client-publish-prefixes), kept in
// history and recovered after a reconnect; the member list comes from presence (`presence` frame)
// and follows memberJoined / memberLeft. Names travel in the messages (and in a token's `info`
// claim when the server uses tokens). A reload recovers what was said while the page was away.
import { bindIndicator, createClient, offerTokenRenewal, showError, el, params } from "./common.js";

const room = `room:${params.get("room") ?? "lobby"}`;
document.getElementById("room").textContent = room;
document.getElementById("title").textContent = `Chat · ${room.slice(5)}`;
const messages = document.getElementById("messages");
const membersNode = document.getElementById("members");
const countNode = document.getElementById("member-count");
const logNode = document.getElementById("log");
const nameInput = document.getElementById("name");
const textInput = document.getElementById("text");
const sendError = document.getElementById("send-error");
nameInput.value = params.get("name") ?? localStorage.getItem("herald-chat-name") ?? "";

/** connectionId -> Member; names learned from messages by connection. */
const members = new Map();
const names = new Map();

const log = (text) => {
  logNode.textContent = `${new Date().toLocaleTimeString()}  ${text}\n${logNode.textContent}`.slice(0, 4000);
};
const who = (m) => m.info?.name ?? names.get(m.connectionId) ?? (m.user || `guest ${m.connectionId.slice(-4)}`);

function renderMembers() {
  membersNode.replaceChildren(
    ...[...members.values()].map((m) =>
      el("li", { "data-connection-id": m.connectionId, text: `${who(m)}${m.connectionId === client.connectionId ? " (you)" : ""}` }),
    ),
  );
  countNode.textContent = String(members.size);
}

// The page keeps what it showed, and where it was in the room's stream, for this tab: a reload
// shows them again and subscribes from there, so what was said meanwhile is recovered.
const storageKey = `herald-chat:${room}`;
const saved = JSON.parse(sessionStorage.getItem(storageKey) ?? "null") ?? { messages: [] };

function render(pub) {
  const data = pub.data ?? {};
  if (data.from) names.set(data.from, String(data.name ?? ""));
  const mine = data.from === client.connectionId;
  messages.append(
    el(
      "li",
      { class: mine ? "mine" : "", "data-offset": pub.offset, "data-source": pub.source },
      el("b", { text: `${data.name || "guest"}: ` }),
      el("span", { class: "text", text: String(data.text ?? "") }),
    ),
  );
  messages.scrollTop = messages.scrollHeight;
}

function showMessage(pub) {
  render(pub);
  saved.messages = [...saved.messages, { offset: pub.offset, data: pub.data }].slice(-100);
  saved.position = sub.position;
  sessionStorage.setItem(storageKey, JSON.stringify(saved));
  renderMembers();
}

const client = createClient();
bindIndicator(client);
offerTokenRenewal(client);
for (const m of saved.messages) render({ ...m, source: "saved" });
const sub = client.subscribe(room, {
  onPublication: showMessage,
  ...(saved.position ? { since: saved.position } : {}),
});

async function refreshMembers() {
  try {
    const list = await sub.presence();
    members.clear();
    for (const m of list) members.set(m.connectionId, m);
    renderMembers();
  } catch (err) {
    log(`presence: ${err.message}`);
  }
}

// After every (re)subscribe the list is read again: member notices are not recovered.
sub.on("subscribed", refreshMembers);
sub.on("join", ({ member }) => {
  members.set(member.connectionId, member);
  if (member.connectionId !== client.connectionId) log(`${who(member)} joined`);
  renderMembers();
});
sub.on("leave", ({ member }) => {
  const known = members.get(member.connectionId) ?? member;
  members.delete(member.connectionId);
  log(`${who(known)} left`);
  renderMembers();
});
client.on("disconnected", ({ code, reason }) => log(`disconnected: ${code} ${reason}`));

document.getElementById("send").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = nameInput.value.trim();
  const text = textInput.value.trim();
  if (!name || !text) return;
  localStorage.setItem("herald-chat-name", name);
  sendError.hidden = true;
  try {
    await sub.publish({ from: client.connectionId, name, text });
    textInput.value = "";
  } catch (err) {
    sendError.hidden = false;
    sendError.textContent =
      err.code === "PERMISSION_DENIED"
        ? "This server does not let browsers publish here: start herald with --client-publish-prefixes room: (scripts/start.sh does)."
        : `Not sent: ${err.message}`;
  }
});

const banner = document.getElementById("banner");
sub.on("error", (err) => {
  banner.textContent = `Cannot join ${room}: ${err.detail ?? err.message}`;
  banner.hidden = false;
});
client.connect().catch((err) => showError(banner, `Cannot connect: ${err.message}`));
