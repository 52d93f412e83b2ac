// herald.js — the browser SDK for Herald (https://… your herald host …/herald.js).
//
// One ES module, no dependencies, no bundler: `import { Herald } from "/herald.js"`.
// It speaks the WebSocket JSON protocol of proto/herald/v1/client.proto (docs/protocol.md):
// authenticates with a JWT, reconnects with exponential backoff and jitter, resubscribes and
// recovers missed publications, pings, refreshes the token before it expires, and hands tasks
// to workers. The state machine and the API are documented in client/js/README.md.

/**
 * @typedef {"disconnected" | "connecting" | "connected" | "closed"} ClientState
 *   - disconnected: not connected; a reconnect is scheduled (or connect() was not called yet)
 *   - connecting: opening the socket and authenticating
 *   - connected: welcome (and, when `connect` was sent, `connected`) received; subscriptions
 *     are live
 *   - closed: close() was called, or the server refused us for good; no reconnect
 */

/**
 * @typedef {object} ReconnectOptions
 * @property {number} [minDelayMs=500] first retry delay
 * @property {number} [maxDelayMs=20000] cap of the exponential delay
 * @property {number} [factor=2] growth per failed attempt
 * @property {number} [jitter=0.5] share of the delay that is random (0: none, 1: full jitter)
 */

/**
 * @typedef {object} HeraldOptions
 * @property {string} url WebSocket URL, e.g. "ws://127.0.0.1:8080/ws"
 * @property {string} [token] a JWT; used as is for every (re)connect
 * @property {() => (string | Promise<string>)} [getToken] returns a fresh JWT; called before
 *   each connect and before the token expires (refresh). Wins over `token`.
 * @property {"connect" | "query"} [tokenIn="connect"] send the token in a first `connect`
 *   frame (keeps it out of URLs and access logs) or as `?token=` in the URL
 * @property {unknown | (() => unknown | Promise<unknown>)} [connectData] any JSON value sent as
 *   `connect.data` to the server's connect proxy (its backend decides the user; docs/api.md
 *   "Webhooks"); a function is called before each connect. Without a token the client sends
 *   `connect` when the server asks for it (`welcome.connectRequired`) or when this is set.
 * @property {ReconnectOptions | false} [reconnect] backoff settings; false disables reconnects
 * @property {number} [pingIntervalMs] override the server's advertised ping interval
 * @property {number} [pongTimeoutMs=10000] reconnect when a ping is not answered in time
 * @property {number} [requestTimeoutMs=10000] reject a request without reply after this long
 * @property {number} [refreshBeforeMs=30000] refresh the token this long before it expires
 *   (at most half of its lifetime)
 * @property {boolean} [autoRefresh=true] refresh the token automatically (needs getToken);
 *   without it the server closes the connection with 4001 at expiry and the client reconnects
 *   with a fresh token
 * @property {typeof WebSocket} [WebSocket] the WebSocket constructor (default: the global one;
 *   pass the `ws` package's in Node)
 * @property {(level: string, message: string, detail?: unknown) => void} [log]
 */

/**
 * @typedef {object} StreamPosition
 * @property {string} epoch
 * @property {string} offset decimal string (uint64)
 */

/**
 * @typedef {object} Member one connection subscribed to a channel
 * @property {string} connectionId
 * @property {string} user empty for an anonymous connection
 * @property {string} node
 * @property {string} joinedAtMs decimal string (Unix ms; "0" in a `leave` event)
 * @property {Record<string, unknown>} [info] the `info` claim of the member's token
 */

/**
 * @typedef {object} Publication
 * @property {string} channel
 * @property {string} offset decimal string
 * @property {unknown} data
 * @property {boolean} [ackRequested]
 * @property {"live" | "recovered" | "snapshot"} source how it reached us
 */

/**
 * @typedef {object} Task
 * @property {string} deliveryId
 * @property {string} queue
 * @property {unknown} data
 * @property {number} ackDeadlineMs
 * @property {number} attempt
 * @property {() => Promise<void>} ack
 * @property {() => Promise<void>} nack
 */

/**
 * @typedef {object} SubscribeOptions
 * @property {boolean} [snapshot=false] on an order channel, first receive the latest version of
 *   every open order (a `snapshot` event), also again after a reconnect
 * @property {boolean} [recover=true] after a reconnect, ask for the publications missed meanwhile
 * @property {StreamPosition} [since] recover from this position on the first subscribe too
 */

/**
 * The payload claims of a JWT (not verified: the server did that), or {} when it does not read.
 * @param {string} token
 * @returns {{sub?: string, exp?: number}}
 */
function tokenClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(part + "=".repeat((4 - (part.length % 4)) % 4)), (c) =>
      c.charCodeAt(0),
    );
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === "object" ? claims : {};
  } catch {
    return {};
  }
}

/**
 * Closes a socket the client is done with; none of its events reach the client any more.
 * @param {WebSocket} ws
 * @param {number} code
 * @param {string} reason
 * @param {boolean} hard the peer is presumed dead: Node's ws drops the TCP connection at once
 */
function abandon(ws, code, reason, hard) {
  ws.onopen = ws.onmessage = ws.onclose = null;
  // Closing a socket still connecting makes Node's ws emit an error, which with no listener
  // would be thrown: it is expected here, and ignored.
  ws.onerror = () => {};
  try {
    if (hard && typeof ws.terminate === "function") ws.terminate();
    else ws.close(code, reason);
  } catch {
    // already closed
  }
}

/** An error reply from Herald (or a local failure) with a canonical code. */
export class HeraldError extends Error {
  /**
   * @param {string} code e.g. PERMISSION_DENIED, UNAUTHENTICATED, DEADLINE_EXCEEDED, UNAVAILABLE
   * @param {string} message
   */
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.name = "HeraldError";
    this.code = code;
    this.detail = message;
  }
}

/** Close codes (docs/protocol.md). */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  TOKEN_EXPIRED: 4001,
  UNAUTHORIZED: 4003,
  SLOW_CONSUMER: 4008,
  // Nothing arrived from us for the server's idle timeout (we did not ping and the socket did not
  // answer its pings): the network is probably gone; reconnected with backoff like other closes.
  IDLE_TIMEOUT: 4010,
  // We sent frames faster than the server's per-connection rate: reconnected with backoff.
  RATE_LIMITED: 4029,
  // Our user already has the server's maximum of connections: reconnected with backoff.
  TOO_MANY_CONNECTIONS: 4030,
  // Backends close with 4500..4999 to tell clients not to reconnect.
  NO_RECONNECT_MIN: 4500,
  NO_RECONNECT_MAX: 4999,
  // Used by this SDK when it closes a socket itself.
  CLIENT_PING_TIMEOUT: 3001,
  CLIENT_RECONNECT: 3002,
});

/** A minimal event emitter: on() returns a function that removes the listener. */
class Emitter {
  constructor() {
    /** @type {Map<string, Set<Function>>} */
    this._listeners = new Map();
  }

  /**
   * @param {string} event
   * @param {(detail: any) => void} listener
   * @returns {() => void} removes the listener
   */
  on(event, listener) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(listener);
    return () => this.off(event, listener);
  }

  /**
   * @param {string} event
   * @param {(detail: any) => void} listener
   */
  off(event, listener) {
    this._listeners.get(event)?.delete(listener);
  }

  /**
   * Resolves with the next `event` whose detail satisfies `predicate`.
   * @param {string} event
   * @param {(detail: any) => boolean} [predicate]
   * @returns {Promise<any>}
   */
  once(event, predicate = () => true) {
    return new Promise((resolve) => {
      const off = this.on(event, (detail) => {
        if (!predicate(detail)) return;
        off();
        resolve(detail);
      });
    });
  }

  /** @protected */
  _emit(event, detail) {
    for (const listener of [...(this._listeners.get(event) ?? [])]) {
      try {
        listener(detail);
      } catch (err) {
        // A failing listener must not break the client; report it on the console.
        console.error(`herald.js: a '${event}' listener threw`, err);
      }
    }
  }
}

/**
 * One channel subscription, kept across reconnects until unsubscribe().
 * Events: `subscribed`, `publication`, `snapshot`, `resync`, `error`, `unsubscribed`.
 */
export class Subscription extends Emitter {
  /**
   * @param {Herald} client
   * @param {string} channel
   * @param {SubscribeOptions} options
   */
  constructor(client, channel, options) {
    super();
    this.client = client;
    this.channel = channel;
    this.options = { snapshot: false, recover: true, ...options };
    /** @type {"subscribing" | "subscribed" | "unsubscribed" | "failed"} */
    this.state = "subscribing";
    /** @type {StreamPosition | null} the last publication seen (or the subscribe position) */
    this.position = options.since ? { ...options.since } : null;
  }

  /** Stops the subscription (also on the server when connected). */
  async unsubscribe() {
    return this.client.unsubscribe(this.channel);
  }

  /**
   * Who is in this channel now (a channel of the server's --presence-prefixes).
   * @returns {Promise<Member[]>} ordered by connection id
   */
  async presence() {
    return this.client.presence(this.channel);
  }

  /**
   * Publishes to this channel (where the token's `publish` claim or the server's
   * --client-publish-prefixes allows it).
   * @param {unknown} data any JSON value
   * @returns {Promise<StreamPosition>} the publication's position
   */
  async publish(data) {
    return this.client.publish(this.channel, data);
  }
}

/**
 * The Herald client. Events (client.on(name, fn)):
 *   state {from, to}, connecting {attempt, delayMs}, connected {connectionId, node, user,
 *   expiresAtMs, data}, disconnected {code, reason, willReconnect}, subscribed, unsubscribed,
 *   publication, snapshot, resync, push {data}, task (Task), refreshed {expiresAtMs},
 *   join {channel, member}, leave {channel, member} (channels of --join-leave-prefixes; also on
 *   the Subscription), error (HeraldError).
 */
export class Herald extends Emitter {
  /** @param {HeraldOptions} options */
  constructor(options) {
    super();
    if (!options || typeof options.url !== "string") {
      throw new TypeError("Herald: options.url is required (e.g. 'ws://127.0.0.1:8080/ws')");
    }
    this.options = {
      tokenIn: "connect",
      pongTimeoutMs: 10000,
      requestTimeoutMs: 10000,
      refreshBeforeMs: 30000,
      autoRefresh: true,
      ...options,
    };
    this.reconnectOptions =
      options.reconnect === false
        ? null
        : { minDelayMs: 500, maxDelayMs: 20000, factor: 2, jitter: 0.5, ...options.reconnect };
    this.WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (typeof this.WebSocket !== "function") {
      throw new TypeError("Herald: no WebSocket implementation (pass options.WebSocket)");
    }
    /** @type {ClientState} */
    this.state = "disconnected";
    /** @type {string} */
    this.connectionId = "";
    /** @type {string} */
    this.user = "";
    /** @type {number} Unix ms; 0 without a token */
    this.expiresAtMs = 0;
    /** @type {unknown} the connect proxy's `data` for this connection (undefined without) */
    this.data = undefined;
    /** @type {Map<string, Subscription>} */
    this.subscriptions = new Map();
    /** @type {Set<string>} task queues joined (rejoined after a reconnect) */
    this.queues = new Set();

    this._ws = null;
    this._nextId = 1;
    /** @type {Map<number, {resolve: Function, reject: Function, timer: any}>} */
    this._pending = new Map();
    this._attempt = 0;
    this._timers = { reconnect: null, ping: null, pong: null, refresh: null };
    this._pingIntervalMs = 25000;
    this._onOnline = () => {
      if (this.state === "disconnected" && this._timers.reconnect) this._reconnectNow();
    };
    globalThis.addEventListener?.("online", this._onOnline);
  }

  // ------------------------------------------------------------------ connection lifecycle

  /**
   * Connects (and keeps reconnecting until close()). Resolves once connected the first time;
   * rejects if the first attempt is refused for good (e.g. an invalid token without getToken).
   * @returns {Promise<void>}
   */
  connect() {
    if (this.state === "closed") this._setState("disconnected");
    if (this.state === "connected") return Promise.resolve();
    const ready = new Promise((resolve, reject) => {
      const offs = [
        this.on("connected", () => {
          offs.forEach((off) => off());
          resolve();
        }),
        this.on("state", ({ to }) => {
          if (to !== "closed") return;
          offs.forEach((off) => off());
          reject(this._fatal ?? new HeraldError("CANCELLED", "client closed"));
        }),
      ];
    });
    if (this.state === "disconnected" && !this._ws && !this._timers.reconnect) this._open();
    return ready;
  }

  /**
   * Closes the connection for good (no reconnect). Subscriptions are kept in the client, so a
   * later connect() resubscribes them.
   * @param {number} [code=1000]
   * @param {string} [reason]
   */
  close(code = CloseCode.NORMAL, reason = "client closed") {
    this._clearTimers();
    const ws = this._ws;
    this._ws = null;
    this._failPending(new HeraldError("CANCELLED", "client closed"));
    this._unmarkSubscribed();
    if (ws) {
      abandon(ws, code, reason, false);
      this._emit("disconnected", { code, reason, willReconnect: false });
    }
    this._setState("closed");
    globalThis.removeEventListener?.("online", this._onOnline);
  }

  // No connection, so nothing is subscribed on the server: kept subscriptions wait for the next
  // connect to resubscribe them.
  _unmarkSubscribed() {
    for (const sub of this.subscriptions.values()) {
      if (sub.state === "subscribed") sub.state = "subscribing";
    }
  }

  /** @param {ClientState} to */
  _setState(to) {
    const from = this.state;
    if (from === to) return;
    this.state = to;
    this._log("debug", `state ${from} -> ${to}`);
    this._emit("state", { from, to });
  }

  // `announced`: a scheduled retry, whose `connecting` (with its delay) was emitted already.
  async _open(announced = false) {
    this._setState("connecting");
    if (!announced) this._emit("connecting", { attempt: this._attempt });
    let token = this.options.token ?? "";
    try {
      if (this.options.getToken) token = await this.options.getToken();
    } catch (err) {
      this._log("warn", "getToken failed", err);
      this._emit("error", new HeraldError("UNAUTHENTICATED", `getToken failed: ${err}`));
      this._scheduleReconnect();
      return;
    }
    if (this.state !== "connecting") return; // closed meanwhile
    this._token = token;
    let url = this.options.url;
    if (token && this.options.tokenIn === "query") {
      url += (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
    }
    let ws;
    try {
      ws = new this.WebSocket(url);
    } catch (err) {
      this._emit("error", new HeraldError("INVALID_ARGUMENT", `cannot open ${url}: ${err}`));
      this._scheduleReconnect();
      return;
    }
    this._ws = ws;
    this._welcomed = false;
    ws.onmessage = (event) => this._onMessage(ws, event);
    ws.onerror = () => {
      // The close event follows with the details.
    };
    ws.onclose = (event) => this._onClose(ws, event.code, event.reason);
  }

  // Gives up on `ws` now: a dead peer never answers the close handshake, and waiting for it
  // (Node's ws waits 30 s) would keep the client "connected" to nothing.
  _drop(ws, code, reason, hard = false) {
    abandon(ws, code, reason, hard);
    this._onClose(ws, code, reason);
  }

  _onClose(ws, code, reason) {
    if (ws !== this._ws) return;
    this._ws = null;
    this._clearTimers();
    this._failPending(new HeraldError("UNAVAILABLE", `connection closed (${code} ${reason})`));
    this._unmarkSubscribed();
    let willReconnect = this.reconnectOptions !== null;
    if (code >= CloseCode.NO_RECONNECT_MIN && code <= CloseCode.NO_RECONNECT_MAX) {
      willReconnect = false;
    }
    if ((code === CloseCode.UNAUTHORIZED || code === CloseCode.TOKEN_EXPIRED) && !this.options.getToken) {
      // The same static token would be refused again.
      willReconnect = false;
    }
    const wasConnected = this.state === "connected";
    this._log("info", `disconnected: ${code} ${reason}`);
    if (!willReconnect) {
      this._fatal = new HeraldError(
        code === CloseCode.UNAUTHORIZED || code === CloseCode.TOKEN_EXPIRED ? "UNAUTHENTICATED" : "UNAVAILABLE",
        `closed by the server: ${code} ${reason}`,
      );
      this._emit("disconnected", { code, reason, willReconnect });
      this._setState("closed");
      return;
    }
    this._setState("disconnected");
    this._emit("disconnected", { code, reason, willReconnect });
    // An expired token is not a failure of the server: reconnect at once with a fresh one.
    if (code === CloseCode.TOKEN_EXPIRED && wasConnected) {
      this._reconnectNow();
    } else {
      this._scheduleReconnect();
    }
  }

  _scheduleReconnect() {
    if (!this.reconnectOptions || this.state === "closed") {
      this._setState("closed");
      return;
    }
    this._setState("disconnected");
    const { minDelayMs, maxDelayMs, factor, jitter } = this.reconnectOptions;
    const base = Math.min(maxDelayMs, minDelayMs * Math.pow(factor, this._attempt));
    const delayMs = Math.round(base * (1 - jitter) + Math.random() * base * jitter);
    this._attempt += 1;
    this._log("info", `reconnecting in ${delayMs} ms (attempt ${this._attempt})`);
    this._emit("connecting", { attempt: this._attempt, delayMs });
    clearTimeout(this._timers.reconnect);
    this._timers.reconnect = setTimeout(() => {
      this._timers.reconnect = null;
      this._open(true);
    }, delayMs);
  }

  _reconnectNow() {
    const announced = this._timers.reconnect !== null;
    clearTimeout(this._timers.reconnect);
    this._timers.reconnect = null;
    this._open(announced);
  }

  /**
   * Drops the current socket and reconnects (e.g. after the network changed).
   */
  reconnect() {
    if (this._ws) {
      this._drop(this._ws, CloseCode.CLIENT_RECONNECT, "client reconnect");
    } else if (this.state !== "connecting") {
      this._reconnectNow();
    }
  }

  _onMessage(ws, event) {
    if (ws !== this._ws) return;
    const text = typeof event.data === "string" ? event.data : String(event.data);
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      this._log("warn", "ignoring a frame that is not JSON", text);
      return;
    }
    if (frame.welcome) {
      this._onWelcome(frame.welcome);
      return;
    }
    if (frame.id && this._pending.has(frame.id)) {
      const { resolve, reject, timer, onReply } = this._pending.get(frame.id);
      this._pending.delete(frame.id);
      clearTimeout(timer);
      if (frame.error) {
        reject(new HeraldError(frame.error.code, frame.error.message ?? ""));
        return;
      }
      // Applied before the next frame is read: a socket may hand over the frames behind this
      // reply (the publications that follow a subscribe) before a promise continuation runs.
      if (onReply) {
        try {
          onReply(frame);
        } catch (err) {
          this._log("warn", "reply handler failed", err);
        }
      }
      resolve(frame);
      return;
    }
    if (frame.pub) this._onPublication(frame.pub, "live");
    else if (frame.push) this._emit("push", { data: frame.push.data });
    else if (frame.task) this._onTask(frame.task);
    else if (frame.subscribed) this._onServerSubscribed(frame.subscribed);
    else if (frame.unsubscribed) this._onServerUnsubscribed(frame.unsubscribed);
    else if (frame.memberJoined) this._onMember("join", frame.memberJoined);
    else if (frame.memberLeft) this._onMember("leave", frame.memberLeft);
    else if (frame.error) this._emit("error", new HeraldError(frame.error.code, frame.error.message));
  }

  async _onWelcome(welcome) {
    this._welcomed = true;
    this.connectionId = welcome.connectionId ?? "";
    this.node = welcome.node ?? "";
    this._pingIntervalMs = this.options.pingIntervalMs ?? welcome.pingIntervalMs ?? 25000;
    const ws = this._ws;
    // A token in the URL authenticated the connection already. Otherwise `connect` carries the
    // token, or, without one, goes to the server's connect proxy, whose backend names the user
    // (from the handshake's cookies or `connectData`).
    const tokenInUrl = Boolean(this._token) && this.options.tokenIn === "query";
    const hasData = this.options.connectData !== undefined;
    const sendConnect =
      !tokenInUrl && (Boolean(this._token) || hasData || Boolean(welcome.connectRequired));
    try {
      if (sendConnect) {
        const connect = {};
        if (this._token) connect.token = this._token;
        if (hasData) {
          const data = this.options.connectData;
          try {
            connect.data = typeof data === "function" ? await data() : data;
          } catch (err) {
            // Like a failed getToken: this socket cannot authenticate; try again with backoff.
            this._log("warn", "connectData failed", err);
            if (ws === this._ws) ws.close(CloseCode.CLIENT_RECONNECT, "connectData failed");
            throw new HeraldError("UNAUTHENTICATED", `connectData failed: ${err}`);
          }
          if (ws !== this._ws) return; // closed meanwhile
        }
        // Applied as the reply is read: the server's subscribed frames follow right behind it.
        await this._request({ connect }, (reply) => {
          this.user = reply.connected?.user ?? "";
          this.expiresAtMs = Number(reply.connected?.expiresAtMs ?? 0);
          this.data = reply.connected?.data;
          this._onConnected(ws);
        });
      } else {
        // A token in the URL: the server verified it; its claims say who and until when (so
        // that the token is refreshed before it expires, as with `connect`).
        const claims = tokenInUrl ? tokenClaims(this._token) : {};
        this.user = typeof claims.sub === "string" ? claims.sub : "";
        this.expiresAtMs = typeof claims.exp === "number" ? claims.exp * 1000 : 0;
        this.data = undefined;
        this._onConnected(ws);
      }
    } catch (err) {
      // The server closes the socket after a refused connect; _onClose decides what follows.
      this._emit("error", err);
    }
  }

  // `ws` is authenticated: announces it and (re)subscribes and joins on it.
  _onConnected(ws) {
    if (ws !== this._ws) return;
    this._attempt = 0;
    this._setState("connected");
    this._startPing();
    this._scheduleRefresh();
    this._emit("connected", {
      connectionId: this.connectionId,
      node: this.node,
      user: this.user,
      expiresAtMs: this.expiresAtMs,
      data: this.data,
    });
    for (const sub of this.subscriptions.values()) {
      // A `connected` listener may have subscribed already, on this socket.
      if (!sub.serverSide && sub._sentOn !== ws) this._sendSubscribe(sub, true);
    }
    for (const queue of this.queues) {
      this._request({ join: { queue } }).catch((err) => this._emit("error", err));
    }
  }

  // ------------------------------------------------------------------ requests

  /**
   * Sends one frame with a fresh id and resolves with the reply frame.
   * @param {object} frame e.g. {ping: {}}
   * @param {(reply: any) => void} [onReply] run on the reply as it is read, before later frames
   * @returns {Promise<any>}
   */
  _request(frame, onReply) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1) {
      return Promise.reject(new HeraldError("UNAVAILABLE", "not connected"));
    }
    const id = this._nextId++;
    if (this._nextId > 0xffffffff) this._nextId = 1;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new HeraldError("DEADLINE_EXCEEDED", `no reply to ${Object.keys(frame)[0]}`));
      }, this.options.requestTimeoutMs);
      this._pending.set(id, { resolve, reject, timer, onReply });
      ws.send(JSON.stringify({ id, ...frame }));
    });
  }

  _failPending(error) {
    for (const { reject, timer } of this._pending.values()) {
      clearTimeout(timer);
      reject(error);
    }
    this._pending.clear();
  }

  /**
   * Sends a message to the backend (the `message` frame; delivered to gRPC WatchEvents).
   * @param {unknown} data any JSON value
   * @returns {Promise<void>} resolves when Herald accepted it
   */
  async send(data) {
    await this._request({ message: { data } });
  }

  /**
   * Calls `method` on the backend (the server's rpc proxy, --proxy-rpc-url) and resolves with
   * its result. Rejects with a HeraldError carrying the error frame's code and message: the
   * backend's refusal, UNIMPLEMENTED when no backend serves the method, UNAVAILABLE or
   * DEADLINE_EXCEEDED when it failed. Not retried: call again if you want to.
   * @param {string} method letters, digits and `_ : . @ / = -`
   * @param {unknown} [data] any JSON value
   * @returns {Promise<unknown>} the backend's `result` (undefined when it gave none)
   */
  async rpc(method, data) {
    const rpc = { method };
    if (data !== undefined) rpc.data = data;
    const reply = await this._request({ rpc });
    return reply.rpcResult?.data;
  }

  /**
   * Round trip to the server; resolves with the latency in ms.
   * @returns {Promise<number>}
   */
  async ping() {
    const start = Date.now();
    await this._request({ ping: {} });
    return Date.now() - start;
  }

  // ------------------------------------------------------------------ subscriptions

  /**
   * Subscribes to a channel; the subscription survives reconnects (with recovery).
   * @param {string} channel
   * @param {SubscribeOptions & {onPublication?: (pub: Publication) => void}} [options]
   * @returns {Subscription} already subscribing; wait with `await sub.ready()`
   */
  subscribe(channel, options = {}) {
    let sub = this.subscriptions.get(channel);
    if (!sub) {
      sub = new Subscription(this, channel, options);
      this.subscriptions.set(channel, sub);
    }
    if (options.onPublication) sub.on("publication", options.onPublication);
    sub.ready = () =>
      sub.state === "subscribed"
        ? Promise.resolve(sub)
        : sub.state === "failed"
          ? Promise.reject(sub.error)
          : new Promise((resolve, reject) => {
              const offs = [
                sub.on("subscribed", () => (offs.forEach((f) => f()), resolve(sub))),
                sub.on("error", (err) => (offs.forEach((f) => f()), reject(err))),
              ];
            });
    if (this.state === "connected") this._sendSubscribe(sub, false);
    return sub;
  }

  /**
   * @param {Subscription} sub
   * @param {boolean} resubscribe true after a reconnect
   */
  async _sendSubscribe(sub, resubscribe) {
    sub.state = "subscribing";
    sub._sentOn = this._ws; // sent once per socket, however it was asked for
    const request = { channel: sub.channel };
    const recovering = sub.position !== null && (resubscribe ? sub.options.recover : true);
    if (recovering) request.recover = { epoch: sub.position.epoch, offset: sub.position.offset };
    if (sub.options.snapshot) request.snapshot = true;
    try {
      await this._request({ subscribe: request }, (reply) => {
        if (this.subscriptions.get(sub.channel) !== sub) return; // unsubscribed meanwhile
        this._applySubscribed(sub, reply.subscribed ?? {}, recovering, resubscribe);
      });
    } catch (err) {
      if (err.code === "UNAVAILABLE" || err.code === "CANCELLED") return; // retried on reconnect
      if (this.subscriptions.get(sub.channel) === sub) this.subscriptions.delete(sub.channel);
      sub.state = "failed";
      sub.error = err;
      sub._emit("error", err);
      this._emit("error", err);
    }
  }

  _applySubscribed(sub, s, recovering, resubscribe) {
    const detail = {
      channel: sub.channel,
      epoch: s.epoch ?? "",
      offset: s.offset ?? "0",
      recovered: Boolean(s.recovered),
      resubscribed: resubscribe && Boolean(sub.position),
    };
    const samePosition = sub.position && sub.position.epoch === detail.epoch;
    if (recovering && s.recovered) {
      for (const p of s.publications ?? []) this._deliver(sub, p, "recovered");
    } else if (recovering) {
      // Missed publications are gone (history trimmed, or the server restarted: new epoch).
      const event = {
        channel: sub.channel,
        reason: samePosition ? "history no longer available" : "stream epoch changed",
        snapshot: Boolean(s.snapshot),
      };
      sub._emit("resync", event);
      this._emit("resync", event);
    }
    if (s.snapshot) {
      const pubs = s.snapshot.map((p) => ({ ...p, channel: sub.channel, source: "snapshot" }));
      const event = { channel: sub.channel, publications: pubs };
      sub._emit("snapshot", event);
      this._emit("snapshot", event);
    }
    // Live publications follow the subscribe position.
    if (!sub.position || !samePosition || BigInt(detail.offset) >= BigInt(sub.position.offset)) {
      sub.position = { epoch: detail.epoch, offset: detail.offset };
    }
    sub.state = "subscribed";
    sub._emit("subscribed", detail);
    this._emit("subscribed", detail);
  }

  _onServerSubscribed(s) {
    let sub = this.subscriptions.get(s.channel);
    if (!sub) {
      sub = new Subscription(this, s.channel, { recover: false });
      sub.serverSide = true;
      this.subscriptions.set(s.channel, sub);
    }
    this._applySubscribed(sub, s, false, false);
  }

  _onServerUnsubscribed({ channel, resubscribe }) {
    const sub = this.subscriptions.get(channel);
    if (!sub) return;
    if (resubscribe) {
      // The node lost track of the stream (e.g. its Redis restarted): subscribe again, recovering
      // from the last position ("resync" follows when the missed publications are gone).
      this._sendSubscribe(sub, false);
      return;
    }
    this.subscriptions.delete(channel);
    sub.state = "unsubscribed";
    sub._emit("unsubscribed", { channel, byServer: true });
    this._emit("unsubscribed", { channel, byServer: true });
  }

  _onMember(event, { channel, member }) {
    const detail = { channel, member };
    this.subscriptions.get(channel)?._emit(event, detail);
    this._emit(event, detail);
  }

  /**
   * Who is in a presence channel (--presence-prefixes) this connection may subscribe to.
   * @param {string} channel
   * @returns {Promise<Member[]>} ordered by connection id
   */
  async presence(channel) {
    const reply = await this._request({ presence: { channel } });
    return reply.presence?.members ?? [];
  }

  /**
   * Publishes to a channel as a backend would (kept in history, recovered like any
   * publication), where the token's `publish` claim or --client-publish-prefixes allows it.
   * @param {string} channel
   * @param {unknown} data any JSON value
   * @returns {Promise<StreamPosition>} the publication's position
   */
  async publish(channel, data) {
    const reply = await this._request({ publish: { channel, data } });
    return { epoch: reply.published?.epoch ?? "", offset: reply.published?.offset ?? "0" };
  }

  _onPublication(pub, source) {
    const sub = this.subscriptions.get(pub.channel);
    if (sub) {
      this._deliver(sub, pub, source);
    } else {
      this._emit("publication", { ...pub, source });
    }
  }

  _deliver(sub, pub, source) {
    const publication = { ...pub, channel: sub.channel, source };
    if (sub.position) {
      const offset = BigInt(pub.offset ?? "0");
      if (offset <= BigInt(sub.position.offset)) return; // already seen (recovery overlap)
      sub.position = { epoch: sub.position.epoch, offset: String(offset) };
    }
    sub._emit("publication", publication);
    this._emit("publication", publication);
  }

  /**
   * Stops a subscription.
   * @param {string} channel
   */
  async unsubscribe(channel) {
    const sub = this.subscriptions.get(channel);
    if (!sub) return;
    this.subscriptions.delete(channel);
    sub.state = "unsubscribed";
    sub._emit("unsubscribed", { channel, byServer: false });
    this._emit("unsubscribed", { channel, byServer: false });
    if (this.state === "connected") await this._request({ unsubscribe: { channel } });
  }

  /**
   * Acknowledges a publication that asked for it (`ackRequested`).
   * @param {Publication} pub
   */
  async ackPublication(pub) {
    await this._request({ ack: { channel: pub.channel, offset: pub.offset } });
  }

  // ------------------------------------------------------------------ tasks (workers)

  /**
   * Becomes a worker of `queue`: Herald dispatches its tasks to this connection (`task` event).
   * Rejoined after every reconnect.
   * @param {string} queue
   */
  async join(queue) {
    this.queues.add(queue);
    if (this.state === "connected") await this._request({ join: { queue } });
  }

  /** @param {string} queue */
  async leave(queue) {
    this.queues.delete(queue);
    if (this.state === "connected") await this._request({ leave: { queue } });
  }

  /**
   * Acknowledges a task: it is done and will not be redelivered.
   * @param {string} deliveryId
   */
  async ack(deliveryId) {
    await this._request({ ack: { deliveryId } });
  }

  /**
   * Gives a task back for redelivery to another worker.
   * @param {string} deliveryId
   */
  async nack(deliveryId) {
    await this._request({ nack: { deliveryId } });
  }

  _onTask(t) {
    /** @type {Task} */
    const task = {
      deliveryId: t.deliveryId,
      queue: t.queue,
      data: t.data,
      ackDeadlineMs: t.ackDeadlineMs ?? 0,
      attempt: t.attempt ?? 1,
      ack: () => this.ack(t.deliveryId),
      nack: () => this.nack(t.deliveryId),
    };
    this._emit("task", task);
  }

  // ------------------------------------------------------------------ ping and token refresh

  _startPing() {
    clearInterval(this._timers.ping);
    this._timers.ping = setInterval(() => {
      const ws = this._ws;
      // One ping at a time: its pong timer is not restarted by the next tick.
      if (!ws || this.state !== "connected" || this._timers.pong) return;
      this._timers.pong = setTimeout(() => {
        this._timers.pong = null;
        this._log("warn", "no pong: reconnecting");
        if (ws === this._ws) this._drop(ws, CloseCode.CLIENT_PING_TIMEOUT, "no pong", true);
      }, this.options.pongTimeoutMs);
      this._request({ ping: {} })
        .then(() => {
          clearTimeout(this._timers.pong);
          this._timers.pong = null;
        })
        .catch(() => {});
    }, this._pingIntervalMs);
  }

  _scheduleRefresh() {
    clearTimeout(this._timers.refresh);
    if (!this.expiresAtMs || !this.options.getToken || !this.options.autoRefresh) return;
    const ttl = this.expiresAtMs - Date.now();
    const before = Math.min(this.options.refreshBeforeMs, Math.max(ttl / 2, 0));
    const delay = Math.max(0, ttl - before);
    this._timers.refresh = setTimeout(() => this.refresh().catch(() => {}), delay);
  }

  /**
   * Replaces the connection's token now (getToken() is asked for a new one). Called
   * automatically before the token expires.
   * @returns {Promise<number>} the new expiry (Unix ms)
   */
  async refresh() {
    if (typeof this.options.getToken !== "function") {
      throw new HeraldError("FAILED_PRECONDITION", "refresh() needs the getToken option");
    }
    try {
      const token = await this.options.getToken();
      const reply = await this._request({ refresh: { token } });
      this._token = token;
      this.expiresAtMs = Number(reply.refreshed?.expiresAtMs ?? 0);
      this._emit("refreshed", { expiresAtMs: this.expiresAtMs });
      this._scheduleRefresh();
      return this.expiresAtMs;
    } catch (err) {
      this._emit("error", err);
      // Try again soon while the current token is still valid; the server closes the
      // connection (4001) when it expires, and the reconnect gets a fresh token.
      if (this.expiresAtMs - Date.now() > 2000) {
        clearTimeout(this._timers.refresh);
        this._timers.refresh = setTimeout(() => this.refresh().catch(() => {}), 1000);
      }
      throw err;
    }
  }

  _clearTimers() {
    clearTimeout(this._timers.reconnect);
    clearInterval(this._timers.ping);
    clearTimeout(this._timers.pong);
    clearTimeout(this._timers.refresh);
    this._timers = { reconnect: null, ping: null, pong: null, refresh: null };
  }

  _log(level, message, detail) {
    this.options.log?.(level, message, detail);
  }
}

export default Herald;
