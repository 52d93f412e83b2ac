// herald.js as the npm package `herald-client` (client/js/package.json): `npm pack`, `npm install`
// of the tarball into a scratch project, then used there by name the way a user would, under
// Node against the real herald, and type-checked with TypeScript against its herald.d.ts.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { HERALD_BIN, Herald, publishOrder, waitFor } from "./support/herald.mjs";

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const pkgDir = path.join(root, "client/js");
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8"));

let scratch;
let tarball;
let herald;

before(async () => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), "herald-npm-"));
  const packed = await run("npm", ["pack", "--json", "--pack-destination", scratch], { cwd: pkgDir });
  const [info] = JSON.parse(packed.stdout);
  tarball = { path: path.join(scratch, info.filename), files: info.files.map((f) => f.path).sort() };
  const app = path.join(scratch, "app");
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "shop", private: true, type: "module" }));
  // As a user would: `npm install herald-client ws` (ws: the copy this repository's tests use).
  await run("npm", ["install", "--no-audit", "--no-fund", "--offline", tarball.path, path.join(root, "node_modules/ws")], { cwd: app });
  herald = await Herald.start();
});

after(async () => {
  await herald?.stop();
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

test("npm pack ships the module, its types and README, nothing else", () => {
  assert.deepEqual(tarball.files, ["README.md", "herald.d.ts", "herald.js", "package.json"]);
  assert.equal(pkg.name, "herald-client");
  assert.equal(pkg.type, "module");
  assert.deepEqual(pkg.exports["."], { types: "./herald.d.ts", default: "./herald.js" });
});

test("the package's version is herald's", async () => {
  const { stdout } = await run(HERALD_BIN, ["--version"]);
  assert.equal(stdout.split(" ")[1].trim(), pkg.version);
});

test("installed from the tarball, it receives a publication from a real herald under Node", async () => {
  const app = path.join(scratch, "app");
  fs.writeFileSync(
    path.join(app, "consumer.mjs"),
    `import { Herald } from "herald-client";
import WebSocket from "ws";
const herald = new Herald({ url: process.argv[2], WebSocket });
const sub = herald.subscribe("store:42");
sub.on("publication", (pub) => {
  console.log("publication " + JSON.stringify(pub.data));
  herald.close();
});
await herald.connect();
await sub.ready();
console.log("subscribed " + herald.connectionId);
`,
  );
  const child = spawn(process.execPath, ["consumer.mjs", herald.wsUrl], { cwd: app, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const exited = new Promise((resolve) => child.on("exit", resolve));
  try {
    await waitFor(() => out.includes("subscribed ") || child.exitCode !== null, "the consumer's subscription");
    assert.match(out, /^subscribed \S+/, err);
    await publishOrder(herald, { id: "npm-1", version: 1, store: "42" });
    assert.equal(await exited, 0, err);
    const line = out.split("\n").find((l) => l.startsWith("publication "));
    assert.ok(line, out + err);
    const order = JSON.parse(line.slice("publication ".length));
    assert.equal(order.id, "npm-1");
    assert.equal(order.status, "ORDER_STATUS_CREATED");
  } finally {
    child.kill();
  }
});

test("without a global WebSocket (Node 20) it asks for one", { skip: typeof globalThis.WebSocket === "function" }, async () => {
  const app = path.join(scratch, "app");
  const r = await run(process.execPath, ["--input-type=module", "-e", `import { Herald } from "herald-client"; try { new Herald({ url: "ws://x/ws" }); } catch (e) { console.log(e.message); }`], { cwd: app });
  assert.match(r.stdout, /no WebSocket implementation \(pass options\.WebSocket\)/);
});

test("herald.d.ts declares exactly what herald.js exports", async () => {
  const mod = await import(path.join(scratch, "app/node_modules/herald-client/herald.js"));
  const dts = fs.readFileSync(path.join(pkgDir, "herald.d.ts"), "utf8");
  const declared = [...dts.matchAll(/^export (?:declare )?(?:class|const|function) (\w+)/gm)].map((m) => m[1]);
  if (/^export default /m.test(dts)) declared.push("default");
  assert.deepEqual(declared.sort(), Object.keys(mod).sort());
});

test("TypeScript (strict, nodenext) type-checks a consumer against the installed package", async () => {
  const app = path.join(scratch, "app");
  fs.writeFileSync(
    path.join(app, "consumer.ts"),
    `import Herald, { CloseCode, HeraldError, type Publication, type Task, type WebSocketConstructor } from "herald-client";

declare const WS: WebSocketConstructor;
const herald = new Herald({ url: "ws://127.0.0.1:8080/ws", WebSocket: WS, getToken: async () => "jwt", reconnect: { maxDelayMs: 5000 } });
const sub = herald.subscribe("store:42", { snapshot: true });
sub.on("publication", (pub: Publication) => console.log(pub.channel, pub.offset, pub.source));
sub.on("snapshot", ({ publications }) => publications.forEach((p) => console.log(p.data)));
herald.on("disconnected", ({ code, willReconnect }) => console.log(code === CloseCode.TOKEN_EXPIRED, willReconnect));
herald.on("task", async (task: Task) => { await task.ack(); });
herald.on("error", (err) => { if (err instanceof HeraldError) console.log(err.code, err.detail); });
async function main(): Promise<void> {
  await herald.connect();
  const ready: typeof sub = await sub.ready();
  const rtt: number = await herald.ping();
  const state: "disconnected" | "connecting" | "connected" | "closed" = herald.state;
  console.log(ready.position?.offset, rtt, state, herald.subscriptions.get("store:42")?.state);
  // @ts-expect-error: an unknown event name
  herald.on("publicaton", () => {});
  // @ts-expect-error: url is required
  new Herald({ token: "x" });
  // @ts-expect-error: tokenIn is "connect" or "query"
  new Herald({ url: "ws://x/ws", tokenIn: "header" });
}
void main;
`,
  );
  const tsc = path.join(root, "node_modules/typescript/bin/tsc");
  const r = await run(process.execPath, [tsc, "--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022", "consumer.ts"], { cwd: app }).catch((e) => e);
  assert.equal(r.code ?? 0, 0, `${r.stdout}${r.stderr}`);
});
