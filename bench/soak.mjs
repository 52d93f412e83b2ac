// Soak and faults against one running herald (bench/soak.sh starts it): healthy subscribers
// check every publication while orders flow, and beside them, all at once, the inputs a server
// on the open internet meets: connection churn ending in TCP resets, half-open sockets (a phone
// that left the network), readers that stop reading, oversize, malformed and deeply nested
// frames, clients over the frame rate, and slowloris handshakes. /healthz is polled throughout.
// After the load stops and the server settles, RSS and open fds are compared with the baseline.
//
//   node bench/soak.mjs WS_ADDRESS HERALD_PID SECONDS   -> JSON report on stdout, summary on stderr
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import WebSocket from "ws";

const [address, pidArg, secondsArg] = process.argv.slice(2);
const pid = Number(pidArg);
const seconds = Number(secondsArg ?? 60);
const [host, port] = [address.slice(0, address.lastIndexOf(":")), Number(address.slice(address.lastIndexOf(":") + 1))];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.error(`[soak ${new Date().toISOString().slice(11, 19)}]`, ...a);

function procStats() {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
  const fds = fs.readdirSync(`/proc/${pid}/fd`).length;
  return { rssKb, fds };
}

function httpRequest(method, path, body, timeoutMs = 3000) {
  return new Promise((resolve) => {
    const started = performance.now();
    const req = http.request({ host, port, method, path, agent: false, timeout: timeoutMs,
      headers: body ? { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) } : {} },
    (res) => {
      let data = "";
      res.on("data", (c) => (data += c));
      res.on("end", () => resolve({ status: res.statusCode, body: data, ms: performance.now() - started }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (e) => resolve({ status: 0, error: e.message, ms: performance.now() - started }));
    if (body) req.write(body);
    req.end();
  });
}

async function metrics() {
  const r = await httpRequest("GET", "/metrics");
  const out = {};
  for (const line of (r.body ?? "").split("\n")) {
    const m = /^(herald_[a-z_]+(?:\{[^}]*\})?) (\d+(?:\.\d+)?)$/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

// A WebSocket upgrade over a plain socket, for clients that must misbehave below the library.
function rawUpgrade() {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, host, () => {
      s.write(`GET /ws HTTP/1.1\r\nHost: ${address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    });
    let buf = Buffer.alloc(0);
    const onData = (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.includes("\r\n\r\n")) {
        s.off("data", onData);
        resolve(s);
      }
    };
    s.on("data", onData);
    s.on("error", reject);
  });
}
function maskedText(text) {
  const payload = Buffer.from(text);
  const len = payload.length;
  const header = len < 126 ? Buffer.from([0x81, 0x80 | len])
    : Buffer.from([0x81, 0x80 | 126, len >> 8, len & 255]);
  const mask = Buffer.from([1, 2, 3, 4]);
  const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
  return Buffer.concat([header, mask, body]);
}

const report = { seconds, problems: [] };
const channels = ["store:1", "store:2", "store:3", "store:4", "store:5"];
let running = true;

// --- healthy subscribers: every publication, in order, exactly once --------------------------
const healthy = [];
function healthySubscriber(i) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://${address}/ws`);
    const state = { ws, seen: new Map(), received: 0, gaps: 0, dups: 0, closed: null, subscribed: 0 };
    ws.on("message", (raw) => {
      const f = JSON.parse(raw);
      if (f.subscribed) {
        state.seen.set(f.subscribed.channel, BigInt(f.subscribed.offset ?? "0"));
        if (++state.subscribed === 2) resolve(state);
      } else if (f.pub) {
        const last = state.seen.get(f.pub.channel);
        const off = BigInt(f.pub.offset);
        if (off <= last) state.dups++;
        else if (off !== last + 1n) state.gaps++;
        state.seen.set(f.pub.channel, off > last ? off : last);
        state.received++;
      }
    });
    ws.on("open", () => {
      ws.send(JSON.stringify({ id: 1, subscribe: { channel: channels[i % 5] } }));
      ws.send(JSON.stringify({ id: 2, subscribe: { channel: channels[(i + 1) % 5] } }));
    });
    ws.on("close", (code) => { state.closed = code; });
    ws.on("error", () => {});
    const pinger = setInterval(() => running && ws.readyState === 1 && ws.send('{"ping":{}}'), 1000);
    ws.on("close", () => clearInterval(pinger));
    healthy.push(state);
  });
}

// --- publisher: orders over the HTTP API --------------------------------------------------------
const published = new Map(channels.map((c) => [c, 0n]));
let publishFailures = 0;
async function publisher() {
  let n = 0;
  const pad = "x".repeat(3000);
  while (running) {
    const channel = channels[n % 5];
    const body = JSON.stringify({ channel, data: { n, pad } });
    const r = await httpRequest("POST", "/api/v1/Publish", body);
    if (r.status === 200) {
      const off = BigInt(JSON.parse(r.body).delivery.offset);
      if (off > published.get(channel)) published.set(channel, off);
    } else {
      publishFailures++;
    }
    n++;
    await sleep(5);
  }
}

// --- health poller -------------------------------------------------------------------------------
const health = { polls: 0, failures: 0, maxMs: 0 };
async function healthPoller() {
  while (running) {
    const r = await httpRequest("GET", "/healthz", null, 2000);
    health.polls++;
    if (r.status !== 200) health.failures++;
    health.maxMs = Math.max(health.maxMs, r.ms);
    await sleep(200);
  }
}

// --- offenders -------------------------------------------------------------------------------------
const offenders = { churnResets: 0, halfOpen: 0, slowReaders: 0, oversize: 0, invalidUtf8: 0, malformed: 0, flooders: 0, slowloris: 0 };
const held = [];  // sockets the offenders keep open until the end

async function churner() {  // subscribe, then vanish with a TCP reset
  while (running) {
    await new Promise((resolve) => {
      const ws = new WebSocket(`ws://${address}/ws`);
      ws.on("open", () => {
        ws.send(JSON.stringify({ id: 1, subscribe: { channel: channels[offenders.churnResets % 5] } }));
        setTimeout(() => { ws._socket?.resetAndDestroy(); offenders.churnResets++; resolve(); }, 20);
      });
      ws.on("error", () => resolve());
    });
    await sleep(30);
  }
}
async function halfOpen() {  // a phone off the network: upgraded, then silent, never reading or FIN
  for (let i = 0; i < 40 && running; i++) {
    const s = await rawUpgrade();
    s.write(maskedText(JSON.stringify({ id: 1, subscribe: { channel: channels[i % 5] } })));
    s.pause();
    s.on("error", () => {});
    held.push(s);
    offenders.halfOpen++;
    await sleep(100);
  }
}
async function slowReader() {  // subscribes to every busy channel and stops reading (4008)
  for (let i = 0; i < 10 && running; i++) {
    const s = await rawUpgrade();
    for (const c of channels) s.write(maskedText(JSON.stringify({ subscribe: { channel: c } })));
    s.pause();
    s.on("error", () => {});
    // It pings (so liveness keeps it) but reads nothing: only the send-buffer limit drops it.
    const pinger = setInterval(() => s.writable && s.write(maskedText('{"ping":{}}')), 1000);
    s.on("close", () => clearInterval(pinger));
    held.push(s);
    offenders.slowReaders++;
    await sleep(500);
  }
}
async function badFrames() {  // malformed and deeply nested (error replies), then invalid UTF-8 or oversize (closes)
  let i = 0;
  while (running) {
    await new Promise((resolve) => {
      const ws = new WebSocket(`ws://${address}/ws`);
      ws.on("open", () => {
        ws.send("{not json");
        ws.send(`{"id":4,"message":{"data":${"[".repeat(20000)}${"]".repeat(20000)}}}`);
        offenders.malformed += 2;
        if (i++ % 2 === 0) {
          ws.send(Buffer.from([0x7b, 0xc3, 0x28, 0x7d]), { binary: false });  // close 1007
          offenders.invalidUtf8++;
        } else {
          ws.send("x".repeat(70 * 1024));  // over --max-frame-bytes: close 1009
          offenders.oversize++;
        }
      });
      ws.on("close", resolve);
      ws.on("error", resolve);
    });
    await sleep(100);
  }
}
async function flooder() {  // over the frame rate: errors, then close 4029
  while (running) {
    await new Promise((resolve) => {
      const ws = new WebSocket(`ws://${address}/ws`);
      ws.on("open", () => {
        for (let i = 0; i < 500; i++) ws.send(JSON.stringify({ id: i + 1, message: { data: { i } } }));
        offenders.flooders++;
      });
      ws.on("close", resolve);
      ws.on("error", resolve);
    });
    await sleep(500);
  }
}
async function slowloris() {  // handshakes that never finish
  while (running) {
    const s = net.connect(port, host);
    s.on("error", () => {});
    s.write("GET /ws HTTP/1.1\r\nHost: x\r\n");
    const drip = setInterval(() => s.writable && s.write("X-a: b\r\n"), 1000);
    s.on("close", () => clearInterval(drip));
    held.push(s);
    offenders.slowloris++;
    await sleep(200);
  }
}

// --- run -----------------------------------------------------------------------------------------
report.baseline = procStats();
log("baseline", report.baseline);
for (let i = 0; i < 50; i++) await healthySubscriber(i);
const withSubscribers = procStats();
log(`${healthy.length} healthy subscribers`, withSubscribers);
const tasks = [publisher(), healthPoller(), churner(), halfOpen(), slowReader(), badFrames(), flooder(), slowloris()];
let peak = { rssKb: 0, fds: 0 };
const sampler = setInterval(() => {
  const s = procStats();
  peak = { rssKb: Math.max(peak.rssKb, s.rssKb), fds: Math.max(peak.fds, s.fds) };
}, 500);
await sleep(seconds * 1000);
running = false;
log("load stopped; letting the publisher and pollers finish");
await Promise.all(tasks);
clearInterval(sampler);
report.peak = peak;

// Every publication has reached every healthy subscriber of its channel.
const deadline = Date.now() + 15000;
const complete = () => healthy.every((h) => [...h.seen].every(([c, off]) => off >= published.get(c)));
while (!complete() && Date.now() < deadline) await sleep(100);
let lost = 0;
for (const h of healthy) for (const [c, off] of h.seen) if (off < published.get(c)) lost += Number(published.get(c) - off);
report.healthy = {
  subscribers: healthy.length,
  publications: [...published.values()].reduce((a, b) => a + b, 0n).toString(),
  received: healthy.reduce((a, h) => a + h.received, 0),
  lost, gaps: healthy.reduce((a, h) => a + h.gaps, 0), duplicates: healthy.reduce((a, h) => a + h.dups, 0),
  closed: healthy.filter((h) => h.closed !== null).length,
};
report.publishFailures = publishFailures;
report.health = health;
report.offenders = offenders;

// Offenders that are still held are released only now (the server should have dropped them).
for (const s of held) s.destroy();
for (const h of healthy) h.ws.close(1000);
await sleep(500);
// Back to the baseline: the held sockets' server sides are gone (closed by the server, or now
// by us), so fds return to the count before any client connected.
const settleDeadline = Date.now() + 20000;
let after = procStats();
while (after.fds > report.baseline.fds && Date.now() < settleDeadline) {
  await sleep(250);
  after = procStats();
}
report.after = after;
const m = await metrics();
report.refusals = Object.fromEntries(Object.entries(m).filter(([k]) =>
  /limit_refusals|slow_consumer|client_errors/.test(k)));
report.connectionsAfter = m.herald_connections;

if (lost || report.healthy.gaps || report.healthy.duplicates) report.problems.push("healthy subscribers lost, skipped or duplicated publications");
if (report.healthy.closed) report.problems.push(`${report.healthy.closed} healthy subscribers were closed`);
if (health.failures) report.problems.push(`/healthz failed ${health.failures} times`);
if (health.maxMs > 1000) report.problems.push(`/healthz took ${health.maxMs.toFixed(0)} ms`);
if (publishFailures) report.problems.push(`${publishFailures} publishes failed`);
if (after.fds > report.baseline.fds) report.problems.push(`fds ${after.fds} > baseline ${report.baseline.fds}`);
if (m.herald_connections !== 0) report.problems.push(`${m.herald_connections} connections left`);
for (const reason of ["frame_rate", "frame_rate_close"]) {
  if (!(m[`herald_limit_refusals_total{reason="${reason}"}`] > 0)) report.problems.push(`no ${reason} refusal counted`);
}
if (!(m.herald_slow_consumer_closes_total > 0)) report.problems.push("no slow consumer counted");
if (!(m.herald_client_errors_total > 0)) report.problems.push("no client error counted");
console.log(JSON.stringify(report, null, 1));
log(report.problems.length ? `PROBLEMS: ${report.problems.join("; ")}` : "ok");
process.exit(report.problems.length ? 1 : 0);
