// Customer tracking page: one order's progress, live.
import { bindIndicator, createClient, offerTokenRenewal, showError, el, money, params, statusName } from "./common.js";

const STEPS = [
  ["created", "Placed"],
  ["accepted", "Accepted"],
  ["preparing", "Preparing"],
  ["ready", "Ready"],
  ["shipped", "On its way"],
  ["delivered", "Delivered"],
];
const HEADLINES = {
  created: ["Order placed", "Waiting for the store to accept it."],
  accepted: ["Accepted", "The store has your order."],
  preparing: ["Being prepared", "The kitchen is on it."],
  ready: ["Ready", "Waiting for the courier."],
  shipped: ["On its way", "Your courier is heading to you."],
  delivered: ["Delivered", "Enjoy your meal!"],
  cancelled: ["Cancelled", "This order was cancelled."],
  rejected: ["Rejected", "The store could not take this order."],
};

const orderId = params.get("order");
if (!orderId) {
  document.getElementById("ask").hidden = false;
  document.getElementById("conn").hidden = true;
  document.getElementById("ask-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const next = new URLSearchParams(location.search);
    next.set("order", new FormData(e.target).get("order").trim());
    location.search = next.toString();
  });
} else {
  start(orderId);
}

function start(id) {
  const channel = `order:${id}`;
  document.getElementById("channel").textContent = channel;
  document.getElementById("order-id").textContent = `Order #${id}`;
  document.getElementById("status-panel").hidden = false;
  document.title = `Order ${id} · Tracking`;
  let latest = null;

  const render = (order) => {
    const s = statusName(order.status);
    const [headline, detail] = HEADLINES[s] ?? [s, ""];
    const text = document.getElementById("status-text");
    text.textContent = headline;
    text.dataset.status = s;
    const courier = order.attributes?.courier;
    document.getElementById("status-detail").textContent =
      s === "shipped" && courier ? `${courier} is heading to you.` : order.attributes?.cancel_reason ?? detail;
    const reached = STEPS.findIndex(([key]) => key === s);
    document.getElementById("timeline").replaceChildren(
      ...STEPS.map(([key, label], i) =>
        el("li", { class: i < reached ? "done" : i === reached ? "current" : "", "data-step": key, text: label }),
      ),
    );
    document.getElementById("items").replaceChildren(
      ...(order.items ?? []).map((item) =>
        el("tr", {}, el("td", { text: `${item.quantity ?? 1}× ${item.name ?? item.sku}` }), el("td", { class: "num", text: money({ minorUnits: Number(item.unitPrice?.minorUnits ?? 0) * (item.quantity ?? 1), currency: item.unitPrice?.currency }) })),
      ),
    );
    document.getElementById("total").textContent = money(order.total);
    document.getElementById("items-panel").hidden = false;
    document.getElementById("subtitle").textContent = order.attributes?.address ? `Delivering to ${order.attributes.address}` : "Live tracking";
  };

  const apply = (order) => {
    if (!order || order.id !== id) return;
    if (latest && BigInt(latest.version ?? 0) >= BigInt(order.version ?? 0)) return;
    latest = order;
    render(order);
  };

  const client = createClient();
  bindIndicator(client);
  offerTokenRenewal(client);
  const sub = client.subscribe(channel, { snapshot: true });
  sub.on("snapshot", ({ publications }) => publications.forEach((p) => apply(p.data)));
  sub.on("publication", (p) => apply(p.data));
  const banner = document.getElementById("banner");
  sub.on("error", (err) => {
    banner.textContent = `Cannot follow this order: ${err.detail ?? err.message}`;
    banner.hidden = false;
  });
  client.connect().catch((err) => showError(banner, `Cannot connect: ${err.message}`));
}
