#!/usr/bin/env node
// Follows what happens on Herald as it happens (WatchEvents, a server-streaming gRPC call):
// connects, disconnects, subscriptions, messages the browsers send, acks and task outcomes, one
// line per event. Stops by itself after --count events or --seconds, whichever comes first.
//
//   npm ci && node watch_events.js [--count 100] [--seconds 60] [--type message --type disconnect]
//                                  [--channel store:42] [--user U]
//
// Environment: HERALD_GRPC (default 127.0.0.1:50051), HERALD_API_KEY (default none),
// HERALD_PROTO_DIR (default: the repository's proto/ folder), HERALD_CA (PEM CA file: connect
// with TLS).
"use strict";

const path = require("node:path");
const { parseArgs } = require("node:util");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const { values: opts } = parseArgs({
  options: {
    server: { type: "string", default: process.env.HERALD_GRPC || "127.0.0.1:50051" },
    count: { type: "string", default: "100" },
    seconds: { type: "string", default: "60" },
    type: { type: "string", multiple: true, default: [] }, // connect, disconnect, message, ...
    channel: { type: "string", default: "" },
    user: { type: "string", default: "" },
  },
});
const count = Number(opts.count);
const seconds = Number(opts.seconds);
if (!(count > 0) || !(seconds > 0)) {
  console.error("herald: --count and --seconds must be positive numbers");
  process.exit(2);
}

const protoDir = process.env.HERALD_PROTO_DIR || path.join(__dirname, "..", "..", "..", "proto");
const definition = protoLoader.loadSync("herald/v1/broker.proto", {
  includeDirs: [protoDir],
  keepCase: false, // lowerCamelCase field names, as in the JSON mapping
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true, // google.protobuf.Value tells which of its fields is set in `kind`
});
const { Broker } = grpc.loadPackageDefinition(definition).herald.v1;
// HERALD_CA: TLS to a herald started with --tls-cert, verified against this PEM file.
const credentials = process.env.HERALD_CA
  ? grpc.credentials.createSsl(require("node:fs").readFileSync(process.env.HERALD_CA))
  : grpc.credentials.createInsecure();
const broker = new Broker(opts.server, credentials);

const metadata = new grpc.Metadata();
if (process.env.HERALD_API_KEY) metadata.set("authorization", `Bearer ${process.env.HERALD_API_KEY}`);

// A google.protobuf.Value (a client's message data) as plain JSON.
function plain(value) {
  switch (value?.kind) {
    case "structValue":
      return Object.fromEntries(Object.entries(value.structValue.fields).map(([k, v]) => [k, plain(v)]));
    case "listValue":
      return value.listValue.values.map(plain);
    case "stringValue":
    case "numberValue":
    case "boolValue":
      return value[value.kind];
    default:
      return null;
  }
}

// "2025-01-01T10:00:00.000Z CONNECT n1a2b-00000001 remote=127.0.0.1:40112": the fields an event
// of that type carries, the empty ones left out.
function describe(e) {
  const type = e.type.replace(/^EVENT_TYPE_/, "");
  const fields = [
    ["user", e.user],
    ["remote", e.remoteAddress],
    ["channel", e.channel],
    ["offset", e.offset !== "0" && e.offset],
    ["code", e.code],
    ["reason", e.reason && JSON.stringify(e.reason)],
    ["queue", e.queue],
    ["task", e.taskId],
    ["delivery", e.deliveryId],
    ["attempt", e.attempt],
    ["data", e.type === "EVENT_TYPE_MESSAGE" && JSON.stringify(plain(e.data))],
  ];
  const details = fields.filter(([, v]) => v).map(([k, v]) => `${k}=${v}`);
  const time = new Date(Number(e.timeMs)).toISOString();
  return [time, type, e.connectionId || "-", ...details].join(" ");
}

const request = {
  types: opts.type.map((t) => `EVENT_TYPE_${t.toUpperCase()}`),
  channel: opts.channel,
  user: opts.user,
};
const call = broker.WatchEvents(request, metadata);
let seen = 0;
let stopping = false;
const stop = () => {
  stopping = true;
  call.cancel();
};
const timer = setTimeout(stop, seconds * 1000);

// Herald sends headers as soon as the watcher is attached: events from now on will arrive.
call.on("metadata", () => console.error(`watching: up to ${count} event(s) or ${seconds}s`));
call.on("data", (event) => {
  if (stopping) return;
  if (event.droppedBefore !== "0") {
    console.log(`(${event.droppedBefore} event(s) dropped: this watcher fell behind)`);
  }
  console.log(describe(event));
  if (++seen >= count) stop();
});
call.on("error", (err) => {
  if (stopping && err.code === grpc.status.CANCELLED) return; // we ended it
  console.error(`herald: ${grpc.status[err.code] || err.code} ${err.details || err.message}`);
  process.exitCode = 1;
});
call.on("close", () => {
  clearTimeout(timer);
  broker.close();
});
