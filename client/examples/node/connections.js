#!/usr/bin/env node
// Lists the connections Herald holds, one page at a time (ListConnections), then shows its
// counters (Stats), over gRPC with @grpc/grpc-js and the .proto files loaded at run time.
//
//   npm ci && node connections.js [--channel store:42] [--user U] [--page-size 100]
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
    channel: { type: "string", default: "" },
    user: { type: "string", default: "" },
    "page-size": { type: "string", default: "100" },
  },
});

const protoDir = process.env.HERALD_PROTO_DIR || path.join(__dirname, "..", "..", "..", "proto");
const definition = protoLoader.loadSync("herald/v1/broker.proto", {
  includeDirs: [protoDir],
  keepCase: false, // lowerCamelCase field names, as in the JSON mapping
  longs: String, // uint64 counters as strings: no precision loss
  enums: String,
  defaults: true,
});
const { Broker } = grpc.loadPackageDefinition(definition).herald.v1;
// HERALD_CA: TLS to a herald started with --tls-cert, verified against this PEM file.
const credentials = process.env.HERALD_CA
  ? grpc.credentials.createSsl(require("node:fs").readFileSync(process.env.HERALD_CA))
  : grpc.credentials.createInsecure();
const broker = new Broker(opts.server, credentials);

const metadata = new grpc.Metadata();
if (process.env.HERALD_API_KEY) metadata.set("authorization", `Bearer ${process.env.HERALD_API_KEY}`);

// Promise wrapper for one unary call, with a deadline.
function call(method, request) {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + 10000);
    broker[method](request, metadata, { deadline }, (err, reply) => (err ? reject(err) : resolve(reply)));
  });
}

async function main() {
  let pageToken = "";
  let page = 0;
  do {
    const reply = await call("ListConnections", {
      channel: opts.channel,
      user: opts.user,
      pageSize: Number(opts["page-size"]),
      pageToken,
    });
    page += 1;
    console.log(`page ${page}: ${reply.connections.length} of ${reply.total} connection(s)`);
    for (const c of reply.connections) {
      const since = new Date(Number(c.connectedAtMs)).toISOString();
      console.log(
        `  ${c.id}  ${c.remoteAddress}  user=${c.user || "-"}  since ${since}` +
          `  channels=${c.channels.join(",") || "-"}  frames in/out ${c.framesIn}/${c.framesOut}`,
      );
    }
    pageToken = reply.nextPageToken;
  } while (pageToken);

  const stats = await call("Stats", {});
  console.log(
    `stats: node=${stats.node} uptime=${Math.round(Number(stats.uptimeMs) / 1000)}s ` +
      `connections=${stats.connections} channels=${stats.channels} ` +
      `subscriptions=${stats.subscriptions} publications=${stats.publications} ` +
      `deliveries=${stats.deliveries}`,
  );
}

main()
  .catch((err) => {
    console.error(`herald: ${grpc.status[err.code] || err.code} ${err.details || err.message}`);
    process.exitCode = 1;
  })
  .finally(() => broker.close());
