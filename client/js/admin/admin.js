// Herald admin page: polls the HTTP/JSON control API of the server that serves it (POST
// /api/v1/<Method>) with the API key the operator enters, kept in this tab's sessionStorage.
// No build step, no dependencies. Every value from the server is written with textContent.

const KEY_STORAGE = "herald.admin.apiKey";
const params = new URLSearchParams(location.search);
const INTERVAL_MS = Math.max(200, Number(params.get("interval")) || 1000);
const HISTORY = 60; // samples kept per chart

const $ = (id) => document.getElementById(id);
let apiKey = sessionStorage.getItem(KEY_STORAGE) ?? "";
let timer = null;
let generation = 0; // bumped when the key changes: answers of older polls are dropped
let previous = null; // the last Stats sample, for rates
const series = { connections: [], deliveries: [], publications: [], slow: [] };

class Unauthorized extends Error {}

/** Calls one control API method; resolves its JSON reply, rejects with the server's message. */
async function call(method, body = {}) {
  const headers = { "Content-Type": "application/json" };
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  const res = await fetch(`/api/v1/${method}`, { method: "POST", headers, body: JSON.stringify(body) });
  const reply = await res.json().catch(() => ({}));
  if (res.status === 401) throw new Unauthorized(reply.message ?? "unauthenticated");
  if (!res.ok) throw new Error(`${reply.code ?? res.status}: ${reply.message ?? res.statusText}`);
  return reply;
}

function banner(text, kind = "error") {
  const b = $("banner");
  b.hidden = !text;
  b.textContent = text ?? "";
  b.className = `banner ${kind}`;
}

/** Stops polling and hides every value until a key the server accepts is entered. */
function refuse(err) {
  stop();
  $("app").hidden = true;
  $("node").textContent = "";
  banner(
    apiKey
      ? `The API key was refused (401: ${err.message}). Enter the key this server was started with (--api-key / HERALD_API_KEY).`
      : "This server requires an API key (401). Enter it above: the value of --api-key / HERALD_API_KEY.",
  );
  $("key").focus();
}

const n = (v) => Number(v ?? 0); // 64-bit integers arrive as JSON strings

function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - n(ms)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

function plot(id, values) {
  const svg = $(id);
  const max = Math.max(1, ...values);
  const step = 120 / Math.max(1, HISTORY - 1);
  const offset = HISTORY - values.length;
  const points = values.map((v, i) => `${((offset + i) * step).toFixed(1)},${(34 - (v / max) * 32).toFixed(1)}`);
  let line = svg.querySelector("polyline");
  if (!line) {
    line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    svg.append(line);
  }
  line.setAttribute("points", points.join(" "));
}

function push(name, value) {
  const s = series[name];
  s.push(value);
  if (s.length > HISTORY) s.shift();
}

function showStats(stats) {
  const now = performance.now();
  const sample = {
    at: now,
    deliveries: n(stats.deliveries),
    publications: n(stats.publications),
    slow: n(stats.slowConsumerCloses),
  };
  const rate = (key) => {
    if (!previous) return 0;
    const dt = (sample.at - previous.at) / 1000;
    return dt > 0 ? Math.max(0, (sample[key] - previous[key]) / dt) : 0;
  };
  push("connections", n(stats.connections));
  push("deliveries", rate("deliveries"));
  push("publications", rate("publications"));
  push("slow", rate("slow"));
  previous = sample;
  $("v-connections").textContent = String(n(stats.connections));
  $("v-deliveries").textContent = series.deliveries.at(-1).toFixed(1);
  $("v-publications").textContent = series.publications.at(-1).toFixed(1);
  $("v-slow").textContent = String(sample.slow);
  for (const name of Object.keys(series)) plot(`c-${name}`, series[name]);
  $("node").textContent = `node ${stats.node} · up ${ago(Date.now() - n(stats.uptimeMs)).replace(" ago", "")}`;
  $("totals").textContent =
    `${n(stats.users)} users · ${n(stats.channels)} channels · ${n(stats.subscriptions)} subscriptions · ` +
    `${sample.publications} publications · ${sample.deliveries} deliveries · ${n(stats.clientErrors)} client errors · ` +
    `${n(stats.connectionsTotal)} connections since start`;
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.append(td);
  return td;
}

function emptyRow(tbody, columns, text) {
  const tr = document.createElement("tr");
  const td = cell(tr, text, "empty");
  td.colSpan = columns;
  tbody.replaceChildren(tr);
}

// Rows are kept by connection id and updated in place, so a Kick button is never replaced under
// the pointer by the next poll.
const connRows = new Map();

function showConnections(reply) {
  const tbody = $("conns").tBodies[0];
  const conns = reply.connections ?? [];
  $("conn-total").textContent = `${n(reply.total)}`;
  if (conns.length === 0) {
    connRows.clear();
    emptyRow(tbody, 10, "No connection matches.");
    return;
  }
  tbody.querySelector("td.empty")?.parentElement.remove();
  const seen = new Set();
  for (const c of conns) {
    seen.add(c.id);
    let tr = connRows.get(c.id);
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset.id = c.id;
      for (let i = 0; i < 9; i++) cell(tr, "");
      tr.cells[7].className = tr.cells[8].className = "num";
      const td = document.createElement("td");
      const kick = document.createElement("button");
      kick.type = "button";
      kick.textContent = "Kick";
      kick.title = "Disconnect this connection with the close code above";
      kick.addEventListener("click", () => kickConnection(c.id, kick));
      td.append(kick);
      tr.append(td);
      connRows.set(c.id, tr);
    }
    const values = [
      c.id,
      c.node ?? "",
      c.user || "(anonymous)",
      c.remoteAddress,
      c.origin,
      (c.channels ?? []).join(", "),
      ago(c.connectedAtMs),
      `${n(c.framesIn)} / ${n(c.framesOut)}`,
      `${n(c.sendBufferBytes)} B`,
    ];
    values.forEach((v, i) => {
      if (tr.cells[i].textContent !== v) tr.cells[i].textContent = v;
    });
    tbody.append(tr);
  }
  for (const [id, tr] of connRows) {
    if (!seen.has(id)) {
      tr.remove();
      connRows.delete(id);
    }
  }
}

async function kickConnection(id, button) {
  button.disabled = true;
  const code = Number($("kick-code").value) || 4000;
  try {
    const r = await call("Disconnect", { connectionId: id, code, reason: "kicked from the admin page" });
    banner(`Disconnected ${id} (${n(r.disconnected)} connection${n(r.disconnected) === 1 ? "" : "s"}, close code ${code}).`, "info");
  } catch (err) {
    if (err instanceof Unauthorized) return refuse(err);
    banner(`Kick ${id} failed: ${err.message}`);
    button.disabled = false;
  }
  poll();
}

function showChannels(reply) {
  const tbody = $("channels").tBodies[0];
  const channels = reply.channels ?? [];
  $("chan-total").textContent = `${n(reply.total)}`;
  if (channels.length === 0) return emptyRow(tbody, 2, "No channel has subscribers.");
  const rows = channels.map((c) => {
    const tr = document.createElement("tr");
    cell(tr, c.channel);
    cell(tr, String(n(c.subscribers)), "num");
    return tr;
  });
  tbody.replaceChildren(...rows);
}

function showQueues(reply) {
  const tbody = $("queues").tBodies[0];
  const queues = reply.queues ?? [];
  if (queues.length === 0) return emptyRow(tbody, 8, "No task queue yet.");
  const rows = queues.map((q) => {
    const tr = document.createElement("tr");
    cell(tr, q.queue);
    for (const v of [q.workers, q.waiting, (q.inFlight ?? []).length, q.dispatched, q.acked, q.redelivered, q.expired]) {
      cell(tr, String(n(v)), "num");
    }
    return tr;
  });
  tbody.replaceChildren(...rows);
}

function connectionFilter() {
  const form = new FormData($("conn-filter"));
  const filter = { pageSize: 200 };
  for (const key of ["user", "channel", "remoteAddress"]) {
    const v = String(form.get(key) ?? "").trim();
    if (v) filter[key] = v;
  }
  return filter;
}

let polling = false;

/** One round of calls; the next is scheduled when it ends. */
async function poll() {
  if (polling) return;
  polling = true;
  const mine = generation;
  clearTimeout(timer);
  try {
    const prefix = String(new FormData($("chan-filter")).get("prefix") ?? "").trim();
    const [stats, conns, channels, queues] = await Promise.all([
      call("Stats"),
      call("ListConnections", connectionFilter()),
      call("Channels", { prefix, limit: 100 }),
      call("ListQueues"),
    ]);
    if (mine !== generation) return;
    $("app").hidden = false;
    if ($("banner").classList.contains("error")) banner(null);
    showStats(stats);
    showConnections(conns);
    showChannels(channels);
    showQueues(queues);
  } catch (err) {
    if (mine !== generation) return;
    if (err instanceof Unauthorized) return refuse(err);
    banner(`Cannot reach the control API: ${err.message}. Retrying…`);
  } finally {
    polling = false;
    if (mine === generation && timer !== "stopped") timer = setTimeout(poll, INTERVAL_MS);
  }
}

function stop() {
  clearTimeout(timer);
  timer = "stopped";
  stopEvents();
}

function start() {
  generation++;
  polling = false;
  timer = null;
  previous = null;
  for (const s of Object.values(series)) s.length = 0;
  poll();
  followEvents(generation);
}

// Live events: GET /api/v1/events (Server-Sent Events), read with fetch because EventSource
// cannot send the API key. A dropped stream is resumed with Last-Event-ID.
const MAX_EVENTS = 100;
let events = null; // the AbortController of the stream being read
let lastEventId = "";

function stopEvents() {
  events?.abort();
  events = null;
}

function showEvent(id, type, event) {
  const li = document.createElement("li");
  li.className = type;
  li.dataset.id = id;
  const kind = Object.assign(document.createElement("span"), { className: "type", textContent: type });
  const time = event.timeMs ? new Date(n(event.timeMs)).toLocaleTimeString() : "";
  const parts = [time, event.connectionId, event.user && `user=${event.user}`, event.channel && `channel=${event.channel}`];
  if (type === "message") parts.push(`data=${JSON.stringify(event.data)}`);
  if (type === "ack") parts.push(`offset=${n(event.offset)}`);
  if (type === "disconnect") parts.push(`code=${event.code} ${event.reason ?? ""}`);
  if (event.queue) parts.push(`queue=${event.queue} task=${event.taskId} attempt=${event.attempt}`);
  if (type === "reset") parts.push(`events after ${event.lastEventId} were lost`);
  li.append(kind, parts.filter(Boolean).join(" "));
  $("events").prepend(li);
  while ($("events").children.length > MAX_EVENTS) $("events").lastElementChild.remove();
}

async function followEvents(mine) {
  stopEvents();
  const abort = new AbortController();
  events = abort;
  const headers = { Accept: "text/event-stream" };
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  if (lastEventId) headers["Last-Event-ID"] = lastEventId;
  try {
    const res = await fetch("/api/v1/events", { headers, signal: abort.signal });
    if (!res.ok) {
      const reply = await res.json().catch(() => ({}));
      $("events-note").textContent = `The event stream is not available: ${reply.message ?? res.status}`;
      if (res.status === 401 || res.status === 501) return; // the key form, or no stream here
    } else {
      $("events-note").textContent = "This node's events as they happen (GET /api/v1/events), newest first.";
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const field = (name) => block.split("\n").find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2);
          const id = field("id");
          if (id) lastEventId = id;
          const type = field("event");
          if (type) showEvent(id ?? "", type, JSON.parse(field("data") ?? "{}"));
        }
      }
    }
  } catch (err) {
    if (abort.signal.aborted) return;
    $("events-note").textContent = `The event stream dropped (${err.message}); reconnecting…`;
  }
  if (events === abort && mine === generation) setTimeout(() => mine === generation && followEvents(mine), 1000);
}

$("key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  apiKey = $("key").value.trim();
  if (apiKey) sessionStorage.setItem(KEY_STORAGE, apiKey);
  else sessionStorage.removeItem(KEY_STORAGE);
  $("key").value = "";
  banner(null);
  start();
});

$("forget").addEventListener("click", () => {
  apiKey = "";
  sessionStorage.removeItem(KEY_STORAGE);
  $("app").hidden = true;
  banner(null);
  start();
});

for (const form of ["conn-filter", "chan-filter"]) {
  $(form).addEventListener("input", () => poll());
  $(form).addEventListener("submit", (e) => {
    e.preventDefault();
    poll();
  });
}

function result(id, text, bad = false) {
  $(id).textContent = text;
  $(id).className = bad ? "result bad" : "result";
}

$("publish").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  let data;
  try {
    data = JSON.parse(String(form.get("data")));
  } catch (err) {
    return result("publish-result", `data: not valid JSON (${err.message})`, true);
  }
  try {
    const r = await call("Publish", { channel: String(form.get("channel")).trim(), data });
    result("publish-result", `Published at offset ${n(r.delivery?.offset)}, queued to ${n(r.delivery?.queued)} connection(s).`);
  } catch (err) {
    if (err instanceof Unauthorized) return refuse(err);
    result("publish-result", err.message, true);
  }
});

$("order").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const version = Number(f.get("version"));
  const now = Date.now();
  const order = {
    id: String(f.get("id")).trim(),
    version: String(version),
    status: `ORDER_STATUS_${f.get("status")}`,
    storeId: String(f.get("store")).trim(),
    updatedAtMs: String(now),
  };
  if (version === 1) order.createdAtMs = String(now);
  const customer = String(f.get("customer") ?? "").trim();
  if (customer) order.customerId = customer;
  if (String(f.get("total") ?? "") !== "") {
    order.total = { minorUnits: String(Number(f.get("total"))), currency: String(f.get("currency")).trim().toUpperCase() };
  }
  try {
    const r = await call("PublishOrder", { order });
    result(
      "order-result",
      r.applied
        ? `Applied: version ${n(r.latestVersion)}, queued to ${n(r.queued)} connection(s).`
        : `Not applied: stale, the latest version is ${n(r.latestVersion)}.`,
      !r.applied,
    );
  } catch (err) {
    if (err instanceof Unauthorized) return refuse(err);
    result("order-result", err.message, true);
  }
});

start();
