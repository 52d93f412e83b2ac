// Merchant order board: every order of one store, in columns by status, live.
import { STATUS_LABELS, ago, bindIndicator, createClient, el, itemsSummary, money, params, statusName } from "./common.js";

const store = params.get("store") ?? "42";
const channel = `store:${store}`;
const COLUMNS = ["created", "accepted", "preparing", "ready", "shipped", "done"];
const DONE_SHOWN = 12; // finished orders kept visible in the last column

/** @type {Map<string, any>} order id -> latest order version */
const orders = new Map();

document.getElementById("title").textContent = `Store ${store}`;
document.getElementById("channel").textContent = channel;
document.title = `Store ${store} · Order board`;

const board = document.getElementById("board");
const columns = {};
for (const key of COLUMNS) {
  const count = el("span", { class: "count", text: "0" });
  const cards = el("div", { class: "cards" });
  const label = key === "done" ? "Done" : STATUS_LABELS[key];
  const column = el(
    "section",
    { class: "column", "data-column": key, "data-status": key === "done" ? "delivered" : key },
    el("h2", {}, el("span", { class: "swatch", style: "background: var(--status-color)" }), label, count),
    cards,
  );
  columns[key] = { cards, count };
  board.append(column);
}

function columnOf(order) {
  const s = statusName(order.status);
  return ["delivered", "cancelled", "rejected"].includes(s) ? "done" : s;
}

/** Applies one order version; older or repeated versions are ignored. */
function apply(order, { flash = true } = {}) {
  if (!order?.id) return;
  const known = orders.get(order.id);
  if (known && BigInt(known.version ?? 0) >= BigInt(order.version ?? 0)) return;
  orders.set(order.id, order);
  render(flash ? order.id : null);
}

function card(order) {
  const s = statusName(order.status);
  const who = order.attributes?.customer_name ?? order.customerId ?? "";
  return el(
    "article",
    { class: "card", "data-order-id": order.id, "data-status": s, "data-version": order.version },
    el("div", { class: "row" }, el("span", { class: "id", text: `#${order.id}` }), el("span", { class: "age", "data-since": order.createdAtMs, text: ago(order.createdAtMs) })),
    el("div", { class: "who", text: [who, order.attributes?.address].filter(Boolean).join(" · ") }),
    el("div", { class: "items", text: itemsSummary(order) }),
    el("div", { class: "row" }, el("span", { class: "total", text: money(order.total) }), el("span", { class: "pill", text: STATUS_LABELS[s] ?? s })),
  );
}

function render(flashId) {
  const byColumn = Object.fromEntries(COLUMNS.map((c) => [c, []]));
  for (const o of orders.values()) byColumn[columnOf(o)].push(o);
  byColumn.done.sort((a, b) => Number(b.updatedAtMs) - Number(a.updatedAtMs));
  byColumn.done = byColumn.done.slice(0, DONE_SHOWN);
  let open = 0;
  for (const key of COLUMNS) {
    const list = byColumn[key];
    if (key !== "done") {
      list.sort((a, b) => Number(a.createdAtMs) - Number(b.createdAtMs));
      open += list.length;
    }
    const { cards, count } = columns[key];
    cards.replaceChildren(...(list.length ? list.map(card) : [el("div", { class: "empty", text: "No orders" })]));
    count.textContent = String(list.length);
  }
  document.getElementById("open-count").textContent = String(open);
  const today = new Date().toDateString();
  let revenue = 0;
  let currency = "EUR";
  for (const o of orders.values()) {
    if (statusName(o.status) === "delivered" && new Date(Number(o.updatedAtMs)).toDateString() === today) {
      revenue += Number(o.total?.minorUnits ?? 0);
      currency = o.total?.currency || currency;
    }
  }
  document.getElementById("revenue").textContent = money({ minorUnits: revenue, currency });
  if (flashId) board.querySelector(`[data-order-id="${CSS.escape(flashId)}"]`)?.classList.add("flash");
  // Forget finished orders that fell off the board.
  const shown = new Set(byColumn.done.map((o) => o.id));
  for (const [id, o] of orders) if (columnOf(o) === "done" && !shown.has(id)) orders.delete(id);
}

setInterval(() => {
  for (const node of board.querySelectorAll(".age[data-since]")) node.textContent = ago(node.dataset.since);
}, 15000);

const banner = document.getElementById("banner");
const client = createClient();
bindIndicator(client);

const sub = client.subscribe(channel, { snapshot: true });
sub.on("snapshot", ({ publications }) => {
  for (const p of publications) apply(p.data, { flash: false });
  banner.hidden = true;
});
sub.on("publication", (p) => apply(p.data));
sub.on("resync", ({ snapshot }) => {
  // The server could not replay what we missed while offline. With a snapshot in the same
  // reply the board is complete again; otherwise say so rather than show a silently stale board.
  if (!snapshot) {
    banner.textContent = "Reconnected, but updates sent while offline could not be recovered: some orders may be out of date until they change again.";
    banner.hidden = false;
  }
});
sub.on("subscribed", ({ recovered }) => {
  if (recovered) banner.hidden = true;
});
sub.on("error", (err) => {
  banner.textContent = `Cannot subscribe to ${channel}: ${err.detail ?? err.message}`;
  banner.hidden = false;
});
client.connect().catch((err) => {
  banner.textContent = `Cannot connect: ${err.message}`;
  banner.hidden = false;
});
render();
