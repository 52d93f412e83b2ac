// Types of herald.js, the Herald client SDK (README.md; protocol: docs/protocol.md of Herald).
// Written by hand next to herald.js; tests/js/package.test.mjs type-checks a consumer against it
// and checks that it declares exactly what herald.js exports.

/** Connection state: see the state machine in README.md. */
export type ClientState = "disconnected" | "connecting" | "connected" | "closed";

export interface ReconnectOptions {
  /** First retry delay (default 500). */
  minDelayMs?: number;
  /** Cap of the exponential delay (default 20000). */
  maxDelayMs?: number;
  /** Growth per failed attempt (default 2). */
  factor?: number;
  /** Share of the delay that is random, 0..1 (default 0.5). */
  jitter?: number;
}

/** The subset of the WebSocket API that herald.js uses (browsers' WebSocket, the `ws` package). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onmessage: ((event: { data: any }) => void) | null;
  onerror: ((event: any) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onopen?: ((event: any) => void) | null;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface HeraldOptions {
  /** WebSocket URL, e.g. "ws://127.0.0.1:8080/ws". */
  url: string;
  /** A JWT, used as is for every (re)connect. */
  token?: string;
  /** Returns a fresh JWT; called before each connect and before the token expires. Wins over `token`. */
  getToken?: () => string | Promise<string>;
  /** Send the token in a first `connect` frame (default) or as `?token=` in the URL. */
  tokenIn?: "connect" | "query";
  /**
   * Any JSON value sent as `connect.data` to the server's connect proxy, whose backend decides
   * the user; a function is called before each connect. Without a token, `connect` is sent when
   * the server asks for it (`welcome.connectRequired`) or when this is set.
   */
  connectData?: unknown | (() => unknown | Promise<unknown>);
  /** Backoff settings; `false` disables reconnects. */
  reconnect?: ReconnectOptions | false;
  /** Overrides the server's advertised ping interval. */
  pingIntervalMs?: number;
  /** Reconnect when a ping is not answered within this long (default 10000). */
  pongTimeoutMs?: number;
  /** Reject a request without reply after this long (default 10000). */
  requestTimeoutMs?: number;
  /** Refresh the token this long before it expires (default 30000; at most half its lifetime). */
  refreshBeforeMs?: number;
  /** Refresh the token automatically (needs getToken; default true). */
  autoRefresh?: boolean;
  /** The WebSocket constructor: default `globalThis.WebSocket`; in Node 20 pass the `ws` package's. */
  WebSocket?: WebSocketConstructor | typeof globalThis.WebSocket;
  log?: (level: string, message: string, detail?: unknown) => void;
}

export interface StreamPosition {
  epoch: string;
  /** Decimal string (uint64). */
  offset: string;
}

export interface Publication<T = any> {
  channel: string;
  /** Decimal string (uint64). */
  offset: string;
  data: T;
  ackRequested?: boolean;
  /** How it reached us. */
  source: "live" | "recovered" | "snapshot";
}

export interface Task<T = any> {
  deliveryId: string;
  queue: string;
  data: T;
  ackDeadlineMs: number;
  attempt: number;
  ack(): Promise<void>;
  nack(): Promise<void>;
}

export interface SubscribeOptions {
  /** On an order channel, first receive the latest version of every open order (`snapshot`). */
  snapshot?: boolean;
  /** After a reconnect, ask for the publications missed meanwhile (default true). */
  recover?: boolean;
  /** Recover from this position on the first subscribe too. */
  since?: StreamPosition;
}

export interface SubscribedEvent {
  channel: string;
  epoch: string;
  offset: string;
  recovered: boolean;
  resubscribed: boolean;
}
export interface UnsubscribedEvent {
  channel: string;
  byServer: boolean;
}
export interface SnapshotEvent<T = any> {
  channel: string;
  publications: Publication<T>[];
}
export interface ResyncEvent {
  channel: string;
  reason: string;
  snapshot: boolean;
}

/** One connection subscribed to a channel. */
export interface Member {
  connectionId: string;
  /** Empty for an anonymous connection. */
  user: string;
  node: string;
  /** Unix ms, decimal string ("0" in a `leave` event). */
  joinedAtMs: string;
  /** The `info` claim of the member's token. */
  info?: Record<string, any>;
}
export interface MemberEvent {
  channel: string;
  member: Member;
}

/** Events of a Subscription, by name. */
export interface SubscriptionEvents {
  subscribed: SubscribedEvent;
  publication: Publication;
  snapshot: SnapshotEvent;
  resync: ResyncEvent;
  error: HeraldError;
  unsubscribed: UnsubscribedEvent;
  /** A member's subscription went live (channels of the server's --join-leave-prefixes). */
  join: MemberEvent;
  /** A member's subscription ended. */
  leave: MemberEvent;
}

/** Events of the client, by name. */
export interface HeraldEvents extends SubscriptionEvents {
  state: { from: ClientState; to: ClientState };
  connecting: { attempt: number; delayMs?: number };
  connected: {
    connectionId: string;
    node: string;
    user: string;
    expiresAtMs: number;
    /** The connect proxy's `data` for this connection (undefined without one). */
    data: unknown;
  };
  disconnected: { code: number; reason: string; willReconnect: boolean };
  push: { data: any };
  task: Task;
  refreshed: { expiresAtMs: number };
}

declare class Emitter<Events> {
  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof Events & string>(event: K, listener: (detail: Events[K]) => void): () => void;
  off<K extends keyof Events & string>(event: K, listener: (detail: Events[K]) => void): void;
  /** Resolves with the next `event` whose detail satisfies `predicate`. */
  once<K extends keyof Events & string>(
    event: K,
    predicate?: (detail: Events[K]) => boolean,
  ): Promise<Events[K]>;
}

/** An error from the server (its `code`) or a local one (UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED). */
export class HeraldError extends Error {
  constructor(code: string, message: string);
  readonly name: "HeraldError";
  /** e.g. PERMISSION_DENIED, UNAUTHENTICATED, INVALID_ARGUMENT, UNAVAILABLE. */
  readonly code: string;
  /** The message without the code. */
  readonly detail: string;
}

/** WebSocket close codes (docs/protocol.md). */
export const CloseCode: Readonly<{
  NORMAL: 1000;
  GOING_AWAY: 1001;
  TOKEN_EXPIRED: 4001;
  UNAUTHORIZED: 4003;
  SLOW_CONSUMER: 4008;
  IDLE_TIMEOUT: 4010;
  RATE_LIMITED: 4029;
  TOO_MANY_CONNECTIONS: 4030;
  NO_RECONNECT_MIN: 4500;
  NO_RECONNECT_MAX: 4999;
  CLIENT_PING_TIMEOUT: 3001;
  CLIENT_RECONNECT: 3002;
}>;

/** One channel subscription, kept across reconnects until unsubscribe(). */
export class Subscription extends Emitter<SubscriptionEvents> {
  readonly client: Herald;
  readonly channel: string;
  readonly options: SubscribeOptions;
  state: "subscribing" | "subscribed" | "unsubscribed" | "failed";
  /** The last publication seen (or the subscribe position). */
  position: StreamPosition | null;
  /** Set when the subscribe failed (state "failed"). */
  error?: HeraldError;
  /** Resolves once subscribed; rejects if the subscribe is refused. */
  ready(): Promise<Subscription>;
  /** Stops the subscription (also on the server when connected). */
  unsubscribe(): Promise<void>;
  /** Who is in this channel (a channel of the server's --presence-prefixes). */
  presence(): Promise<Member[]>;
  /** Publishes to this channel where the token's publish claim or --client-publish-prefixes allows it. */
  publish(data: unknown): Promise<StreamPosition>;
}

/** The Herald client. */
export class Herald extends Emitter<HeraldEvents> {
  constructor(options: HeraldOptions);
  readonly options: HeraldOptions;
  state: ClientState;
  connectionId: string;
  user: string;
  /** Unix ms; 0 without a token. */
  expiresAtMs: number;
  /** The connect proxy's `data` for this connection (undefined without one). */
  data: unknown;
  readonly subscriptions: Map<string, Subscription>;
  /** Task queues joined (rejoined after a reconnect). */
  readonly queues: Set<string>;

  /** Connects, and keeps reconnecting until close(); resolves once connected the first time. */
  connect(): Promise<void>;
  /** Closes for good (no reconnect); subscriptions are kept for a later connect(). */
  close(code?: number, reason?: string): void;
  /** Drops the current socket and reconnects. */
  reconnect(): void;
  /** Sends a message to the backends (gRPC WatchEvents); resolves when Herald accepted it. */
  send(data: unknown): Promise<void>;
  /**
   * Calls `method` on the backend (--proxy-rpc-url) and resolves with its `result`; rejects with
   * a HeraldError carrying the error frame's code and message. Not retried.
   */
  rpc(method: string, data?: unknown): Promise<unknown>;
  /** Round trip to the server; resolves with the latency in ms. */
  ping(): Promise<number>;
  /** Subscribes to a channel; the subscription survives reconnects (with recovery). */
  subscribe(
    channel: string,
    options?: SubscribeOptions & { onPublication?: (pub: Publication) => void },
  ): Subscription;
  unsubscribe(channel: string): Promise<void>;
  /** Acknowledges a publication that asked for it (`ackRequested`). */
  ackPublication(pub: Publication): Promise<void>;
  /** Who is in a presence channel (--presence-prefixes) this connection may subscribe to. */
  presence(channel: string): Promise<Member[]>;
  /** Publishes to a channel (kept in history) where the token's publish claim or --client-publish-prefixes allows it. */
  publish(channel: string, data: unknown): Promise<StreamPosition>;
  /** Becomes a worker of `queue` (`task` events); rejoined after every reconnect. */
  join(queue: string): Promise<void>;
  leave(queue: string): Promise<void>;
  /** Acknowledges a task: done, not redelivered. */
  ack(deliveryId: string): Promise<void>;
  /** Gives a task back for redelivery to another worker. */
  nack(deliveryId: string): Promise<void>;
  /** Replaces the connection's token now (asks getToken); resolves with the new expiry. */
  refresh(): Promise<number>;
}

export default Herald;
