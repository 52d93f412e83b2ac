// Shared helpers of the demo pages: the client from the page URL, the connection indicator,
// order formatting. Demo code: readable over clever.
import { Herald } from "../herald.js";

export const params = new URLSearchParams(location.search);

/** Status enum value (ORDER_STATUS_READY) -> short name (ready). */
export function statusName(status) {
  return String(status ?? "").replace(/^ORDER_STATUS_/, "").toLowerCase() || "created";
}

export const STATUS_LABELS = {
  created: "New",
  accepted: "Accepted",
  preparing: "Preparing",
  ready: "Ready",
  shipped: "Out for delivery",
  delivered: "Delivered",
  cancelled: "Cancelled",
  rejected: "Rejected",
};

export function money(total) {
  if (!total) return "";
  const amount = Number(total.minorUnits ?? 0) / 100;
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency: total.currency || "EUR" }).format(amount);
  } catch {
    return `${amount.toFixed(2)} ${total.currency ?? ""}`;
  }
}

/** "5 min ago"; "" for a missing or invalid time (never "NaN h ago"). */
export function ago(ms) {
  const at = Number(ms);
  if (!Number.isFinite(at) || at <= 0) return "";
  const s = Math.max(0, Math.round((Date.now() - at) / 1000));
  if (s < 10) return "just now";
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

export function itemsSummary(order) {
  return (order.items ?? []).map((i) => `${i.quantity ?? 1}× ${i.name ?? i.sku}`).join(", ");
}

/** Creates an element: el("div", {class: "x", text: "hi"}, child...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

/**
 * The Herald client for this page: the WebSocket on the same host (or ?ws=URL), a token from
 * ?token= (mint one with `heraldctl token`) when the server requires one.
 */
export function createClient() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = params.get("ws") ?? `${scheme}//${location.host}/ws`;
  const token = params.get("token") ?? undefined;
  const client = new Herald({
    url,
    token,
    reconnect: { minDelayMs: 300, maxDelayMs: 8000 },
    log: (level, message) => level !== "debug" && console.log(`[herald] ${message}`),
  });
  window.herald = client; // handy in the console (and for the end-to-end tests)
  return client;
}

/** Keeps the connection pill (#conn) and the footer connection id in sync with the client. */
export function bindIndicator(client) {
  const pill = document.getElementById("conn");
  const label = pill.querySelector(".label");
  const idNode = document.getElementById("conn-id");
  let countdown = null;
  const show = (state, text) => {
    pill.dataset.state = state;
    label.textContent = text;
  };
  client.on("connecting", ({ delayMs }) => {
    clearInterval(countdown);
    if (!delayMs) return show("connecting", "Connecting…");
    const until = Date.now() + delayMs;
    const tick = () => {
      const left = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      show("disconnected", left > 0 ? `Reconnecting in ${left}s…` : "Reconnecting…");
    };
    tick();
    countdown = setInterval(tick, 250);
  });
  client.on("state", ({ to }) => {
    if (to === "connecting") {
      clearInterval(countdown);
      show("connecting", "Connecting…");
    } else if (to === "connected") {
      clearInterval(countdown);
      show("connected", "Live");
    } else if (to === "closed") {
      clearInterval(countdown);
      show("closed", "Offline");
    } else if (to === "disconnected" && pill.dataset.state === "connected") {
      show("disconnected", "Reconnecting…");
    }
  });
  client.on("connected", ({ connectionId, user }) => {
    if (idNode) idNode.textContent = `${connectionId}${user ? ` · user ${user}` : ""}`;
  });
  client.on("disconnected", ({ code, reason }) => {
    if (idNode) idNode.textContent = `disconnected (${code}${reason ? ` ${reason}` : ""})`;
  });
}

/**
 * Shows `text` in the page's banner, unless the banner offers a new token (offerTokenRenewal):
 * a connect refused for its token fails the page's connect() too, and that error must not wipe
 * the form that lets the user out.
 */
export function showError(banner, text) {
  if (banner.querySelector("#renew-form")) return;
  banner.textContent = text;
  banner.hidden = false;
}

/**
 * A page opened with ?token= whose token expired (or was refused) would stay "Offline" for good:
 * offer a field to paste a new token (e.g. from `heraldctl token`) and reconnect with it; the URL
 * gets the new token too, so a reload keeps working.
 */
export function offerTokenRenewal(client) {
  const banner = document.getElementById("banner");
  if (!banner) return;
  let lastClose = null;
  client.on("disconnected", ({ code, reason }) => (lastClose = { code, reason }));
  client.on("state", ({ to }) => {
    if (to !== "closed" || !lastClose) return;
    const { code, reason } = lastClose;
    if (code !== 4001 && code !== 4003) return;
    const input = el("input", { type: "text", name: "token", id: "renew-token", placeholder: "new token (JWT)", required: "", autocomplete: "off" });
    const form = el(
      "form",
      {
        class: "inline renew",
        id: "renew-form",
        onsubmit: (e) => {
          e.preventDefault();
          const token = input.value.trim();
          if (!token) return;
          const next = new URLSearchParams(location.search);
          next.set("token", token);
          history.replaceState(null, "", `${location.pathname}?${next}`);
          client.options.token = token;
          banner.hidden = true;
          client.connect().catch(() => {}); // a refused token brings this form back
        },
      },
      input,
      el("button", { text: "Reconnect" }),
    );
    banner.replaceChildren(
      el("span", {
        text: code === 4001
          ? "Your access token has expired. "
          : `The server refused the access token (${reason || code}). `,
      }),
      "Paste a new one (your backend mints them; in development: heraldctl token --sub … --channels … --secret …) to reconnect, or reload the page with a new ?token=.",
      form,
    );
    banner.hidden = false;
  });
}
