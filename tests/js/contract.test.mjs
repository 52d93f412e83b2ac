// herald.js paths that this branch's herald does not serve yet (recovery with publications,
// snapshots, tasks): checked against a scripted server that answers exactly as
// proto/herald/v1/client.proto specifies. When the real server implements them, the same
// scenarios belong in herald.test.mjs against the binary.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import WebSocket, { WebSocketServer } from "ws";

import { Herald as Client } from "../../client/js/herald.js";
import { waitFor } from "./support/herald.mjs";

/** A scripted server: records client frames; `reply(frame, socket)` answers one. */
class ScriptedServer {
  constructor(reply) {
    this.frames = [];
    this.sockets = [];
    this.reply = reply;
    this.server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    this.server.on("connection", (socket) => {
      const n = this.sockets.push(socket);
      socket.send(JSON.stringify({ welcome: { connectionId: `c-${n}`, node: "n1", pingIntervalMs: 60000 } }));
      socket.on("message", (data) => {
        const frame = JSON.parse(String(data));
        this.frames.push({ conn: n, frame });
        const out = this.reply(frame, socket, n);
        if (out) socket.send(JSON.stringify(out));
      });
    });
  }
  get url() {
    return `ws://127.0.0.1:${this.server.address().port}/ws`;
  }
  close() {
    for (const s of this.sockets) s.terminate();
    return new Promise((r) => this.server.close(r));
  }
}

let server;
let tasksAcked = [];
before(async () => {
  server = new ScriptedServer((f, socket, conn) => {
    if (f.subscribe) {
      const s = f.subscribe;
      const sub = { channel: s.channel, epoch: "e1", offset: conn === 1 ? "10" : "14" };
      if (s.recover) {
        // Offsets 11..14 were published while the client was away; 11 it had already seen.
        sub.recovered = s.recover.epoch === "e1";
        sub.publications = ["11", "12", "13", "14"].map((o) => ({ channel: s.channel, offset: o, data: { n: Number(o) } }));
      }
      if (s.snapshot) sub.snapshot = [{ channel: s.channel, offset: "9", data: { id: "o-1", version: "3" } }];
      return { id: f.id, subscribed: sub };
    }
    if (f.join) {
      setTimeout(() => socket.send(JSON.stringify({ task: { deliveryId: `d-${conn}`, queue: f.join.queue, data: { orderId: "o-7" }, ackDeadlineMs: 30000, attempt: conn } })), 5);
      return { id: f.id, joined: { queue: f.join.queue } };
    }
    if (f.ack) {
      tasksAcked.push(f.ack);
      return { id: f.id, acked: {} };
    }
    if (f.ping) return { id: f.id, pong: {} };
    return { id: f.id, error: { code: "INVALID_ARGUMENT", message: "unexpected" } };
  });
  await new Promise((r) => server.server.on("listening", r));
});
after(() => server.close());

test("after a reconnect: recovered publications in order, duplicates dropped, snapshot again", async (t) => {
  const c = new Client({ url: server.url, WebSocket, reconnect: { minDelayMs: 10, maxDelayMs: 20 } });
  t.after(() => c.close());
  const got = [];
  const snapshots = [];
  const sub = c.subscribe("store:1", { snapshot: true });
  sub.on("publication", (p) => got.push([p.offset, p.source]));
  sub.on("snapshot", (s) => snapshots.push(s.publications.map((p) => p.data.id)));
  await c.connect();
  await sub.ready();
  assert.deepEqual(snapshots, [["o-1"]]);
  // A live publication at offset 11, then the socket drops.
  server.sockets[0].send(JSON.stringify({ pub: { channel: "store:1", offset: "11", data: { n: 11 } } }));
  await waitFor(() => got.length === 1, "the live publication");
  server.sockets[0].terminate();
  await waitFor(() => got.length === 4, "the recovered publications");
  assert.deepEqual(got, [["11", "live"], ["12", "recovered"], ["13", "recovered"], ["14", "recovered"]]);
  const resub = server.frames.filter((f) => f.conn === 2 && f.frame.subscribe).map((f) => f.frame.subscribe);
  assert.deepEqual(resub, [{ channel: "store:1", recover: { epoch: "e1", offset: "11" }, snapshot: true }]);
  assert.deepEqual(snapshots, [["o-1"], ["o-1"]]);
  assert.deepEqual(sub.position, { epoch: "e1", offset: "14" });
  // Live publications continue after the recovered ones; an old offset is ignored.
  server.sockets[1].send(JSON.stringify({ pub: { channel: "store:1", offset: "13", data: {} } }));
  server.sockets[1].send(JSON.stringify({ pub: { channel: "store:1", offset: "15", data: {} } }));
  await waitFor(() => got.length === 5, "offset 15");
  assert.deepEqual(got.at(-1), ["15", "live"]);
});

test("tasks: join is repeated after a reconnect; task.ack() sends the delivery id", async (t) => {
  tasksAcked = [];
  const c = new Client({ url: server.url, WebSocket, reconnect: { minDelayMs: 10, maxDelayMs: 20 } });
  t.after(() => c.close());
  const tasks = [];
  c.on("task", (task) => tasks.push(task));
  await c.connect();
  await c.join("couriers");
  await waitFor(() => tasks.length === 1, "a task");
  assert.equal(tasks[0].queue, "couriers");
  assert.deepEqual(tasks[0].data, { orderId: "o-7" });
  await tasks[0].ack();
  assert.deepEqual(tasksAcked, [{ deliveryId: tasks[0].deliveryId }]);
  server.sockets.at(-1).terminate();
  await waitFor(() => tasks.length === 2, "a task on the new connection (rejoined)");
  await tasks[1].nack().catch(() => {}); // the scripted server answers nack with an error
  const nack = server.frames.find((f) => f.frame.nack);
  assert.deepEqual(nack.frame.nack, { deliveryId: tasks[1].deliveryId });
});
