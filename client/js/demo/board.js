// Merchant order board: every order of one store, in columns by status, live.
import { STATUS_LABELS, ago, bindIndicator, createClient, el, itemsSummary, money, offerTokenRenewal, showError, params, statusName } from "./common.js";

const store = params.get("store") ?? "42";
const channel = `store:${store}`;
const COLUMNS = ["created", "accepted", "preparing", "ready", "shipped", "done"];
const DONE_SHOWN = 12; // finished orders kept visible in the last column

// An open order without any update for this long is shown as stale (its publisher may have
// stopped, like a simulator killed mid-order) and no longer counted as open. ?stale-after=SECONDS
// (a positive number; anything else keeps the default).
const staleAfter = Number(params.get("stale-after"));
const STALE_AFTER_MS = (Number.isFinite(staleAfter) && staleAfter > 0 ? staleAfter : 1800) * 1000;

/** @type {Map<string, any>} order id -> latest order version */
const orders = new Map();
/**
 * Orders this board has seen delivered, by id -> {day, minorUnits, currency}. Kept when their
 * card leaves the board, so "delivered today" is the sum over the data (snapshot + updates),
 * not over the cards on screen, and only grows during a day.
 * @type {Map<string, {day: string, minorUnits: number, currency: string}>}
 */
const delivered = new Map();

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
  if (statusName(order.status) === "delivered") {
    const at = Number(order.updatedAtMs) || Date.now();
    delivered.set(order.id, {
      day: new Date(at).toDateString(),
      minorUnits: Number(order.total?.minorUnits ?? 0),
      currency: order.total?.currency || "EUR",
    });
  }
  render(flash ? order.id : null);
}

/** Last sign of life of an order (Unix ms), or 0 when it carries no time at all. */
const lastUpdate = (order) => Number(order.updatedAtMs) || Number(order.createdAtMs) || 0;

function isStale(order) {
  const at = lastUpdate(order);
  return columnOf(order) !== "done" && at > 0 && Date.now() - at > STALE_AFTER_MS;
}

/** "€392.00", or "€392.00 + $12.00" when orders in several currencies were delivered: never one sum. */
function deliveredToday() {
  const today = new Date().toDateString();
  const sums = new Map();
  for (const d of delivered.values()) {
    if (d.day === today) sums.set(d.currency, (sums.get(d.currency) ?? 0) + d.minorUnits);
  }
  if (sums.size === 0) return money({ minorUnits: 0, currency: "EUR" });
  return [...sums].map(([currency, minorUnits]) => money({ minorUnits, currency })).join(" + ");
}

function card(order) {
  const s = statusName(order.status);
  const who = order.attributes?.customer_name ?? order.customerId ?? "";
  const stale = isStale(order);
  // Without createdAtMs the card shows no age rather than a made-up one.
  const age = stale ? `no update for ${ago(lastUpdate(order)).replace(/ ago$/, "")}` : ago(order.createdAtMs);
  return el(
    "article",
    { class: stale ? "card stale" : "card", "data-order-id": order.id, "data-status": s, "data-version": order.version, "data-stale": stale ? "true" : null },
    el("div", { class: "row" }, el("span", { class: "id", text: `#${order.id}` }), el("span", { class: "age", text: age })),
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
  let stale = 0;
  for (const key of COLUMNS) {
    const list = byColumn[key];
    if (key !== "done") {
      // Live orders oldest first; stale ones below them.
      list.sort((a, b) => isStale(a) - isStale(b) || (Number(a.createdAtMs) || 0) - (Number(b.createdAtMs) || 0));
      for (const o of list) isStale(o) ? (stale += 1) : (open += 1);
    }
    const { cards, count } = columns[key];
    cards.replaceChildren(...(list.length ? list.map(card) : [el("div", { class: "empty", text: "No orders" })]));
    count.textContent = String(list.length);
  }
  document.getElementById("open-count").textContent = String(open);
  document.getElementById("stale-count").textContent = stale ? ` · ${stale} stale` : "";
  document.getElementById("revenue").textContent = deliveredToday();
  if (flashId) board.querySelector(`[data-order-id="${CSS.escape(flashId)}"]`)?.classList.add("flash");
  // Forget finished orders that fell off the board.
  const shown = new Set(byColumn.done.map((o) => o.id));
  for (const [id, o] of orders) if (columnOf(o) === "done" && !shown.has(id)) orders.delete(id);
}

// Ages, staleness and the day of "delivered today" move with the clock.
setInterval(() => render(), Math.min(15000, Math.max(1000, STALE_AFTER_MS / 2)));

const banner = document.getElementById("banner");
const client = createClient();
bindIndicator(client);
offerTokenRenewal(client);

const sub = client.subscribe(channel, { snapshot: true });
// Set by a resync that brings a snapshot: the snapshot then replaces the board (an order it no
// longer holds, e.g. after a Herald restart, is gone), rather than adding to it.
let replaceOnSnapshot = false;
sub.on("snapshot", ({ publications }) => {
  if (replaceOnSnapshot) {
    orders.clear();
    replaceOnSnapshot = false;
  } else {
    banner.hidden = true;
  }
  for (const p of publications) apply(p.data, { flash: false });
  render();
});
sub.on("publication", (p) => apply(p.data));
sub.on("resync", ({ snapshot }) => {
  // The server could not replay what we missed while offline: say so rather than show a
  // silently stale board. With a snapshot in the same reply the board is rebuilt from it.
  replaceOnSnapshot = snapshot;
  showError(
    banner,
    snapshot
      ? "Reconnected, but updates sent while offline could not be replayed: the board was reloaded from the server's current orders."
      : "Reconnected, but updates sent while offline could not be recovered: some orders may be out of date until they change again.",
  );
});
sub.on("subscribed", ({ recovered }) => {
  if (recovered) banner.hidden = true;
});
sub.on("error", (err) => {
  banner.textContent = `Cannot subscribe to ${channel}: ${err.detail ?? err.message}`;
  banner.hidden = false;
});
client.connect().catch((err) => showError(banner, `Cannot connect: ${err.message}`));
render();
