// herald.js against the real herald binary (node --test). Node 20 has no global WebSocket: the
// `ws` package's constructor is injected.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import WebSocket from "ws";

import { CloseCode, Herald as Client, HeraldError } from "../../client/js/herald.js";
import { Herald, mintToken, publishOrder, signHs256, waitFor, WebhookBackend } from "./support/herald.mjs";

const SECRET = "test-secret-0123456789abcdef";

/** A client with fast reconnects, closed after the test. */
function client(t, options) {
  const c = new Client({ WebSocket, reconnect: { minDelayMs: 50, maxDelayMs: 400 }, ...options });
  const events = [];
  for (const name of ["state", "connecting", "connected", "disconnected", "publication", "resync", "subscribed", "refreshed", "error"]) {
    c.on(name, (detail) => events.push({ name, detail }));
  }
  c.events = events;
  t.after(() => c.close());
  return c;
}

describe("herald.js, development mode (anonymous)", () => {
  let herald;
  before(async () => {
    herald = await Herald.start();
  });
  after(() => herald.stop());

  test("connects, goes connecting -> connected and learns its connection id", async (t) => {
    const c = client(t, { url: herald.wsUrl });
    assert.equal(c.state, "disconnected");
    await c.connect();
    assert.equal(c.state, "connected");
    assert.match(c.connectionId, /^[\w-]+-[0-9a-f]{8}$/);
    const states = c.events.filter((e) => e.name === "state").map((e) => e.detail.to);
    assert.deepEqual(states, ["connecting", "connected"]);
    const conns = await herald.ctl("conns", "--json");
    assert.ok(conns.stdout.includes(c.connectionId), conns.stdout);
  });

  test("delivers an order published over gRPC to the channel's subscription", async (t) => {
    const c = client(t, { url: herald.wsUrl });
    await c.connect();
    const sub = c.subscribe("store:501");
    await sub.ready();
    assert.equal(sub.state, "subscribed");
    const got = [];
    sub.on("publication", (p) => got.push(p));
    await publishOrder(herald, { id: "js-o1", version: 1, store: "501" });
    await publishOrder(herald, { id: "js-o1", version: 2, status: "accepted", store: "501" });
    await waitFor(() => got.length === 2, "two publications");
    assert.equal(got[0].data.id, "js-o1");
    assert.equal(got[1].data.status, "ORDER_STATUS_ACCEPTED");
    assert.equal(BigInt(got[1].offset), BigInt(got[0].offset) + 1n);
    assert.equal(got[0].source, "live");
    assert.equal(sub.position.offset, got[1].offset);
    // Closed: kept, but no longer subscribed on the server.
    c.close();
    assert.equal(sub.state, "subscribing");
    // connect() again: every state change is an event, leaving `closed` too.
    const from = c.events.length;
    await c.connect();
    const states = c.events.slice(from).filter((e) => e.name === "state").map((e) => `${e.detail.from}->${e.detail.to}`);
    assert.deepEqual(states, ["closed->disconnected", "disconnected->connecting", "connecting->connected"]);
    await sub.ready();
    assert.equal(sub.state, "subscribed");
  });

  test("send() and ping() get their replies; a bad subscribe rejects with the server's error", async (t) => {
    const c = client(t, { url: herald.wsUrl });
    await c.connect();
    await c.send({ text: "courier is here" });
    const ms = await c.ping();
    assert.ok(ms >= 0);
    const bad = c.subscribe("no spaces allowed");
    await assert.rejects(bad.ready(), (err) => err instanceof HeraldError && err.code === "INVALID_ARGUMENT" && /subscribe\.channel/.test(err.message));
    assert.equal(bad.state, "failed");
    assert.equal(c.subscriptions.has("no spaces allowed"), false);
    // No --proxy-rpc-url: the server's error frame rejects the call.
    await assert.rejects(c.rpc("order.cancel", { orderId: "o-1" }), (err) => err instanceof HeraldError && err.code === "UNIMPLEMENTED" && /no backend serves 'order\.cancel'/.test(err.message));
  });

  test("reconnects after a kick and recovers what was published meanwhile, with no resync", async (t) => {
    const c = client(t, { url: herald.wsUrl });
    await c.connect();
    const sub = c.subscribe("store:502");
    await sub.ready();
    const first = c.connectionId;
    const got = [];
    sub.on("publication", (p) => got.push(p.data.id));
    let resynced = false;
    sub.on("resync", () => { resynced = true; });
    await publishOrder(herald, { id: "js-k1", version: 1, store: "502" });
    await waitFor(() => got.includes("js-k1"), "the first publication");
    const kicked = await herald.ctl("kick", first, "--code", "4000", "--reason", "test kick");
    assert.equal(kicked.code, 0, kicked.stderr);
    // Published while the client is away (or just back): recovery or the live stream brings it.
    await publishOrder(herald, { id: "js-k2", version: 1, store: "502" });
    await waitFor(() => c.state === "connected" && c.connectionId !== first, "the reconnect");
    const disconnected = c.events.find((e) => e.name === "disconnected");
    assert.deepEqual(disconnected.detail, { code: 4000, reason: "test kick", willReconnect: true });
    await sub.ready();
    await publishOrder(herald, { id: "js-k3", version: 1, store: "502" });
    await waitFor(() => got.includes("js-k3"), "the publication after the reconnect");
    // Every publication exactly once, in order, and the history covered the gap.
    assert.deepEqual(got, ["js-k1", "js-k2", "js-k3"]);
    assert.equal(resynced, false);
  });

  test("recovers with no gap and no duplicate while publications keep coming across reconnects", async (t) => {
    // ws hands over the frames behind a `subscribed` reply before a promise continuation runs:
    // the reply must be applied first, or the recovered publications look already seen.
    const c = client(t, { url: herald.wsUrl });
    const channel = `gapless:${Date.now()}`;
    const sub = c.subscribe(channel);
    const seen = [];
    sub.on("publication", (p) => seen.push(Number(p.offset)));
    await c.connect();
    await sub.ready();
    const total = 300;
    const publishing = (async () => {
      for (let i = 0; i < total; i++) {
        const r = await fetch(`${herald.httpUrl}/api/v1/Publish`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ channel, data: { i } }),
        });
        assert.equal(r.status, 200);
        if (i % 4 === 0) await new Promise((r) => setTimeout(r, 3));
      }
    })();
    for (let k = 0; k < 5; k++) {
      await new Promise((r) => setTimeout(r, 60));
      c.reconnect();
    }
    await publishing;
    await waitFor(() => seen.length >= total, `all ${total} publications (got ${seen.length})`);
    assert.deepEqual(seen, Array.from({ length: total }, (_, i) => i + 1));
  });

  test("reconnect() and close() while a socket is still connecting are harmless", async (t) => {
    // The second reconnect() opens a socket at once; the third finds it still connecting, and
    // closing such a socket makes Node's ws emit an error that must not go unhandled.
    const c = client(t, { url: herald.wsUrl });
    await c.connect();
    c.reconnect();
    c.reconnect();
    c.reconnect();
    await waitFor(() => c.state === "connected", "the reconnect");
    c.reconnect();
    c.reconnect();
    c.close();
    assert.equal(c.state, "closed");
  });

  test("backs off exponentially with jitter while the server is down, then reconnects", async (t) => {
    const h = await Herald.start();
    const c = client(t, { url: h.wsUrl, reconnect: { minDelayMs: 40, maxDelayMs: 320, factor: 2, jitter: 0.5 } });
    await c.connect();
    const address = h.wsAddress;
    await h.stop("SIGTERM");
    await waitFor(() => c.events.filter((e) => e.name === "connecting" && e.detail.delayMs).length >= 5, "five retries");
    const disconnected = c.events.find((e) => e.name === "disconnected");
    assert.equal(disconnected.detail.code, CloseCode.GOING_AWAY);
    const delays = c.events.filter((e) => e.name === "connecting" && e.detail.delayMs).map((e) => e.detail.delayMs);
    delays.slice(0, 5).forEach((d, i) => {
      const base = Math.min(320, 40 * 2 ** i);
      assert.ok(d >= base / 2 && d <= base, `delay ${i} = ${d} not within [${base / 2}, ${base}]`);
    });
    // One `connecting` per attempt: the one announcing the wait, not a second when it starts.
    const attempts = c.events.filter((e) => e.name === "connecting").map((e) => e.detail.attempt);
    assert.equal(new Set(attempts).size, attempts.length, `attempts announced: ${attempts}`);
    // Back on the same address: the client finds it by itself.
    const again = await Herald.start({ wsListen: address });
    t.after(() => again.stop());
    await waitFor(() => c.state === "connected", "the reconnect to the restarted server");
  });
});

describe("herald.js and a server that stops answering", () => {
  test("no pong within pongTimeoutMs drops the socket at once, even when pings come faster", async (t) => {
    const herald = await Herald.start();
    t.after(() => {
      herald.proc.kill("SIGCONT");
      return herald.stop("SIGKILL");
    });
    // A ping every 200 ms, each given 600 ms: the pong timer of the first ping must not be
    // restarted by the next ones.
    const c = client(t, { url: herald.wsUrl, pingIntervalMs: 200, pongTimeoutMs: 600 });
    await c.connect();
    herald.proc.kill("SIGSTOP");
    const stopped = Date.now();
    await waitFor(() => c.events.some((e) => e.name === "disconnected"), "the disconnect", 5000);
    const elapsed = Date.now() - stopped;
    const disconnected = c.events.find((e) => e.name === "disconnected");
    assert.equal(disconnected.detail.code, CloseCode.CLIENT_PING_TIMEOUT);
    assert.equal(disconnected.detail.willReconnect, true);
    // At most one interval plus the pong timeout (and the test's polling), not ws's 30 s wait.
    assert.ok(elapsed < 2500, `disconnected after ${elapsed} ms`);
    assert.notEqual(c.state, "connected");
  });
});

describe("herald.js and the server's idle timeout", () => {
  // The server pings a connection silent for 200 ms and closes one silent for over 700 ms.
  const IDLE_MS = 700;
  let herald;
  before(async () => {
    herald = await Herald.start({ args: ["--ping-interval-ms", "200", "--idle-timeout-ms", String(IDLE_MS)] });
  });
  after(() => herald.stop());

  /** A `ws` socket that does not answer the server's WebSocket pings, counting them. */
  class DeafWebSocket extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols, { autoPong: false });
      this.on("ping", () => (DeafWebSocket.pings += 1));
    }
  }
  DeafWebSocket.pings = 0;

  /** A `ws` socket that answers pings (as browsers do), counting them. */
  class CountingWebSocket extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      this.on("ping", () => (CountingWebSocket.pings += 1));
    }
  }
  CountingWebSocket.pings = 0;

  test("a silent connection is closed with 4010 and reconnects with backoff", async (t) => {
    // Neither the SDK's pings (an hour apart) nor pongs: the server hears nothing.
    const c = client(t, { url: herald.wsUrl, WebSocket: DeafWebSocket, pingIntervalMs: 3600000 });
    await c.connect();
    const first = c.connectionId;
    await waitFor(() => c.state === "connected" && c.connectionId !== first, "the reconnect", 5000);
    const d = c.events.find((e) => e.name === "disconnected");
    assert.equal(d.detail.code, CloseCode.IDLE_TIMEOUT);
    assert.equal(d.detail.reason, `idle timeout: nothing received for ${IDLE_MS} ms`);
    assert.equal(d.detail.willReconnect, true);
    // Through the backoff, not at once.
    const after = c.events.slice(c.events.indexOf(d));
    assert.ok(after.some((e) => e.name === "connecting" && e.detail.delayMs > 0), JSON.stringify(after));
    assert.ok(DeafWebSocket.pings >= 1, "the server pinged before closing");
    const conns = await herald.ctl("conns", "--json");
    assert.ok(!conns.stdout.includes(first), conns.stdout);
  });

  test("the SDK's own pings keep a connection that does not answer WebSocket pings", async (t) => {
    // It pings every advertised interval (200 ms).
    const c = client(t, { url: herald.wsUrl, WebSocket: DeafWebSocket });
    await c.connect();
    const id = c.connectionId;
    const start = Date.now();
    await waitFor(() => Date.now() - start > 4 * IDLE_MS || c.state !== "connected", "four idle timeouts");
    assert.equal(c.state, "connected");
    assert.equal(c.connectionId, id);
    assert.equal(c.events.filter((e) => e.name === "disconnected").length, 0);
  });

  test("answering the server's pings keeps a connection whose SDK pings are far apart", async (t) => {
    // A background tab: its timers are throttled, but the browser still answers WebSocket pings.
    const c = client(t, { url: herald.wsUrl, WebSocket: CountingWebSocket, pingIntervalMs: 3600000 });
    await c.connect();
    const id = c.connectionId;
    const start = Date.now();
    await waitFor(() => Date.now() - start > 4 * IDLE_MS || c.state !== "connected", "four idle timeouts");
    assert.equal(c.state, "connected");
    assert.equal(c.connectionId, id);
    assert.equal(c.events.filter((e) => e.name === "disconnected").length, 0);
    assert.ok(CountingWebSocket.pings >= 3, `${CountingWebSocket.pings} pings`);
    assert.ok((await c.ping()) >= 0);
  });
});

describe("herald.js with JWT auth (HS256)", () => {
  let herald;
  before(async () => {
    herald = await Herald.start({ args: ["--jwt-hs256-secret", SECRET, "--auth-timeout-ms", "3000"] });
  });
  after(() => herald.stop());

  test("authenticates with a connect frame; the token's sub becomes the connection's user", async (t) => {
    const token = await mintToken({ sub: "u-anna", channels: "store:42,order:*", secret: SECRET });
    const c = client(t, { url: herald.wsUrl, token });
    await c.connect();
    assert.equal(c.user, "u-anna");
    assert.ok(c.expiresAtMs > Date.now() + 3500 * 1000 - 60000);
    const conns = await herald.ctl("conns", "--user", "u-anna", "--json");
    assert.ok(conns.stdout.includes(c.connectionId), conns.stdout);
    await c.subscribe("store:42").ready();
    await c.subscribe("order:o-9").ready();
    await c.subscribe("customer:u-anna").ready();
    await assert.rejects(c.subscribe("store:7").ready(), (err) => err.code === "PERMISSION_DENIED");
  });

  test("tokenIn: 'query' puts the token in the URL", async (t) => {
    const token = await mintToken({ sub: "u-query", channels: "orders", secret: SECRET });
    const c = client(t, { url: herald.wsUrl, token, tokenIn: "query" });
    await c.connect();
    await c.subscribe("orders").ready();
    // No connect frame: who and until when come from the token's claims.
    assert.equal(c.user, "u-query");
    assert.ok(c.expiresAtMs > Date.now() + 3000 * 1000, String(c.expiresAtMs));
    const conn = await herald.ctl("conns", "--user", "u-query", "--json");
    assert.ok(conn.stdout.includes(c.connectionId));
  });

  test("an invalid static token fails connect() for good", async (t) => {
    const token = await mintToken({ sub: "u-x", secret: "not-the-server-secret" });
    const c = client(t, { url: herald.wsUrl, token });
    await assert.rejects(c.connect(), (err) => err.code === "UNAUTHENTICATED" && /4003/.test(err.message));
    assert.equal(c.state, "closed");
    const error = c.events.find((e) => e.name === "error");
    assert.match(error.detail.message, /connect\.token\.signature: does not verify/);
  });

  test("without a token on a server that requires one, connect() fails for good", async (t) => {
    // The server asks for `connect` (welcome.connectRequired): sent without a token, refused.
    const c = client(t, { url: herald.wsUrl });
    await assert.rejects(c.connect(), (err) => err.code === "UNAUTHENTICATED" && /4003/.test(err.message));
    assert.equal(c.state, "closed");
  });

  test("refreshes the token before it expires and keeps the connection", async (t) => {
    let minted = 0;
    const getToken = () => {
      minted += 1;
      return signHs256({ sub: "u-refresh", channels: ["store:42"], ttl: 4, secret: SECRET });
    };
    const c = client(t, { url: herald.wsUrl, getToken, refreshBeforeMs: 2000 });
    await c.connect();
    const id = c.connectionId;
    const firstExpiry = c.expiresAtMs;
    await waitFor(() => c.events.some((e) => e.name === "refreshed"), "a refresh", 8000);
    assert.ok(c.expiresAtMs >= firstExpiry);
    // Past the first token's expiry, still the same connection.
    await waitFor(() => Date.now() > firstExpiry + 500, "the first token's expiry", 8000);
    assert.equal(c.state, "connected");
    assert.equal(c.connectionId, id);
    assert.ok(minted >= 2);
    assert.equal(c.events.filter((e) => e.name === "disconnected").length, 0);
  });

  test("without refresh the server closes with 4001 at expiry; a static token is not retried", async (t) => {
    const token = signHs256({ sub: "u-exp", ttl: 2, secret: SECRET });
    const c = client(t, { url: herald.wsUrl, token });
    await c.connect();
    await waitFor(() => c.state === "closed", "the close at expiry", 6000);
    const d = c.events.find((e) => e.name === "disconnected");
    assert.equal(d.detail.code, CloseCode.TOKEN_EXPIRED);
    assert.equal(d.detail.reason, "token expired");
    assert.equal(d.detail.willReconnect, false);
  });

  test("with getToken, an expired connection reconnects at once with a fresh token", async (t) => {
    let ttl = 2;
    const getToken = () => signHs256({ sub: "u-renew", ttl, secret: SECRET });
    const c = client(t, { url: herald.wsUrl, getToken, autoRefresh: false });
    await c.connect();
    const first = c.connectionId;
    ttl = 3600;
    await waitFor(() => c.state === "connected" && c.connectionId !== first, "the reconnect", 8000);
    const d = c.events.find((e) => e.name === "disconnected");
    assert.equal(d.detail.code, CloseCode.TOKEN_EXPIRED);
    assert.equal(d.detail.willReconnect, true);
  });
});

describe("herald.js, both ways: presence, join/leave, client publish", () => {
  let herald;
  before(async () => {
    herald = await Herald.start({
      args: ["--presence-prefixes", "room:", "--join-leave-prefixes", "room:", "--client-publish-prefixes", "room:"],
    });
  });
  after(() => herald.stop());

  test("sub.presence() lists the members and join/leave reach the others", async (t) => {
    const a = client(t, { url: herald.wsUrl });
    const b = client(t, { url: herald.wsUrl });
    await a.connect();
    await b.connect();
    const subA = a.subscribe("room:p1");
    await subA.ready();
    const joins = [];
    const leaves = [];
    subA.on("join", (e) => joins.push(e));
    subA.on("leave", (e) => leaves.push(e));
    await b.subscribe("room:p1").ready();
    await waitFor(() => joins.some((e) => e.member.connectionId === b.connectionId), "b's join");
    assert.equal(joins.at(-1).channel, "room:p1");
    const members = await subA.presence();
    assert.deepEqual(members.map((m) => m.connectionId).sort(), [a.connectionId, b.connectionId].sort());
    await b.unsubscribe("room:p1");
    await waitFor(() => leaves.some((e) => e.member.connectionId === b.connectionId), "b's leave");
    assert.equal((await subA.presence()).length, 1);
  });

  test("a client publishes where allowed, is refused elsewhere, and a reconnect recovers it", async (t) => {
    const writer = client(t, { url: herald.wsUrl });
    const reader = client(t, { url: herald.wsUrl });
    await writer.connect();
    await reader.connect();
    const got = [];
    const sub = reader.subscribe("room:chat", { onPublication: (p) => got.push(p.data) });
    await sub.ready();
    const pos = await writer.publish("room:chat", { text: "hello" });
    assert.equal(pos.offset, "1");
    await waitFor(() => got.length === 1, "the live publication");
    await assert.rejects(writer.publish("news", { text: "no" }), (err) => err.code === "PERMISSION_DENIED");
    // Published while the reader is away: recovered on its reconnect.
    reader.reconnect();
    await writer.publish("room:chat", { text: "while away" });
    await waitFor(() => got.length === 2, "the recovered publication");
    assert.deepEqual(got, [{ text: "hello" }, { text: "while away" }]);
  });
});

describe("herald.js with a connect proxy and an rpc proxy (a real HTTP backend)", () => {
  const PROXY_SECRET = "proxy-secret-for-herald-js";
  let backend;
  let herald;
  before(async () => {
    backend = await WebhookBackend.start(PROXY_SECRET);
    herald = await Herald.start({
      args: ["--proxy-connect-url", backend.url("/connect"), "--proxy-rpc-url", backend.url("/rpc"), "--proxy-secret", PROXY_SECRET],
    });
  });
  after(async () => {
    await herald.stop();
    await backend.stop();
  });

  test("without a token, connect goes to the backend, which names the user", async (t) => {
    const c = client(t, { url: herald.wsUrl, connectData: async () => ({ login: "ann" }) });
    const connected = c.once("connected");
    await c.connect();
    assert.equal(c.user, "u-ann");
    assert.equal(c.expiresAtMs, 0);
    const detail = await connected;
    assert.equal(detail.user, "u-ann");
    assert.deepEqual(detail.data, c.data);
    assert.equal(c.data.plan, "gold");
    assert.deepEqual(c.data.echo, { login: "ann" });
    // The backend's channels are subscribed by the server.
    await waitFor(() => c.subscriptions.get("user:u-ann")?.state === "subscribed", "the server-side subscription");
    // ... and announced after `connected`, though the server sends it right behind the reply.
    const order = c.events.filter((e) => e.name === "connected" || e.name === "subscribed").map((e) => e.name);
    assert.deepEqual(order, ["connected", "subscribed"]);
    const got = await backend.requests("/connect");
    const mine = got.filter((r) => r.body.connectionId === c.connectionId);
    assert.equal(mine.length, 1);
    assert.equal(mine[0].verified, true);
    assert.equal(mine[0].body.token, undefined);
    assert.deepEqual(mine[0].body.data, { login: "ann" });
    // Reconnects authenticate the same way.
    const first = c.connectionId;
    c.reconnect();
    await waitFor(() => c.state === "connected" && c.connectionId !== first, "the reconnect");
    assert.equal(c.user, "u-ann");
  });

  test("a connectData function that fails is retried with backoff on a new socket", async (t) => {
    let calls = 0;
    const c = client(t, {
      url: herald.wsUrl,
      connectData: () => {
        calls += 1;
        if (calls === 1) throw new Error("session store down");
        return { login: "cid" };
      },
    });
    await c.connect();
    assert.equal(calls, 2);
    assert.equal(c.user, "u-cid");
    const error = c.events.find((e) => e.name === "error");
    assert.equal(error.detail.code, "UNAUTHENTICATED");
    assert.match(error.detail.message, /connectData failed: Error: session store down/);
    const disconnected = c.events.find((e) => e.name === "disconnected");
    assert.equal(disconnected.detail.willReconnect, true);
  });

  test("with neither token nor data the server still gets connect; the backend's refusal is final", async (t) => {
    const c = client(t, { url: herald.wsUrl });
    await assert.rejects(c.connect(), (err) => err.code === "UNAUTHENTICATED" && /4003 unauthorized: not logged in/.test(err.message));
    assert.equal(c.state, "closed");
    const error = c.events.find((e) => e.name === "error");
    assert.equal(error.detail.code, "PERMISSION_DENIED");
  });

  test("rpc() resolves with the backend's result and rejects with the error frame's code and message", async (t) => {
    const c = client(t, { url: herald.wsUrl, connectData: { login: "bob" } });
    await c.connect();
    assert.deepEqual(await c.rpc("echo", { orderId: "o-1001" }), { echo: { orderId: "o-1001" }, user: "u-bob" });
    await assert.rejects(c.rpc("refuse", {}), (err) => err instanceof HeraldError && err.code === "NOT_FOUND" && err.detail === "no such order");
    await assert.rejects(c.rpc("fail"), (err) => err.code === "UNAVAILABLE" && err.detail === "rpc: backend answered HTTP 500");
    // The connection is unharmed by refused calls.
    assert.equal(c.state, "connected");
    // Without data the backend gets none (its echo is null).
    assert.deepEqual(await c.rpc("echo"), { echo: null, user: "u-bob" });
  });
});

describe("raw frames: documented false and zero fields are on the wire", () => {
  let herald;
  before(async () => {
    herald = await Herald.start({ args: ["--presence-prefixes", "room:"] });
  });
  after(() => herald.stop());

  test("recovered:false, and an anonymous member's empty user, read from the socket", async () => {
    const ws = new WebSocket(herald.wsUrl);
    const texts = [];
    ws.on("message", (m) => texts.push(String(m)));
    await new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject)));
    try {
      ws.send(JSON.stringify({ id: 1, subscribe: { channel: "room:raw", recover: { epoch: "gone", offset: "3" } } }));
      await waitFor(() => texts.some((t) => t.startsWith('{"id":1,')), "the subscribe reply");
      const subscribed = texts.find((t) => t.startsWith('{"id":1,'));
      assert.match(subscribed, /"recovered":false/, subscribed);
      ws.send(JSON.stringify({ id: 2, presence: { channel: "room:raw" } }));
      await waitFor(() => texts.some((t) => t.startsWith('{"id":2,')), "the presence reply");
      const presence = texts.find((t) => t.startsWith('{"id":2,'));
      assert.match(presence, /"members":\[\{"connectionId":"[^"]+","user":"","node":"[^"]+","joinedAtMs":"\d+"\}\]/, presence);
    } finally {
      ws.close();
    }
  });
});
