// End to end in real headless Chromium (Debian's chromium, driven by playwright-core): the demo
// pages served by herald, orders published over gRPC by heraldctl. Screenshots go to
// $HERALD_ARTIFACTS (default build/default/test-artifacts).
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

import { Herald, mintToken, publishOrder, waitFor } from "../js/support/herald.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const ARTIFACTS = process.env.HERALD_ARTIFACTS ?? path.join(root, "build/default/test-artifacts");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

let browser;
let userDataDir;
let herald;

before(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "herald-e2e-chromium-"));
  browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1440, height: 900 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  herald = await Herald.start();
});

after(async () => {
  await browser?.close();
  await herald?.stop();
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
});

/** A new page with console errors collected (a page error fails the test). */
async function open(t, url) {
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (err) => problems.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => msg.type() === "error" && problems.push(`console: ${msg.text()}`));
  t.after(async () => {
    await page.close();
    assert.deepEqual(problems.filter((p) => !p.includes("WebSocket")), [], "errors in the page");
  });
  await page.goto(url);
  return page;
}

const card = (page, id) => page.locator(`[data-order-id="${id}"]`);

describe("merchant order board", () => {
  test("shows an order published over gRPC within a second, and moves it by status", async (t) => {
    const page = await open(t, `${herald.httpUrl}/board.html?store=42`);
    await page.locator('#conn[data-state="connected"]').waitFor({ timeout: 10000 });
    await publishOrder(herald, { id: "e2e-1", version: 1, status: "created", store: "42", customer: "c-3", item: "pz-margherita:Pizza Margherita:2:950" });
    const published = Date.now();
    await card(page, "e2e-1").waitFor({ timeout: 1000 });
    t.diagnostic(`order on the board ${Date.now() - published} ms after PublishOrder returned`);
    assert.equal(await page.locator('[data-column="created"] [data-order-id="e2e-1"]').count(), 1);
    assert.match(await card(page, "e2e-1").innerText(), /2× Pizza Margherita/);

    await publishOrder(herald, { id: "e2e-1", version: 2, status: "preparing", store: "42" });
    await page.locator('[data-column="preparing"] [data-order-id="e2e-1"]').waitFor({ timeout: 1000 });
    assert.equal(await page.locator('[data-column="created"] [data-order-id="e2e-1"]').count(), 0);
    // A stale version never moves it back.
    await publishOrder(herald, { id: "e2e-1", version: 1, status: "created", store: "42" });
    await publishOrder(herald, { id: "e2e-2", version: 1, status: "accepted", store: "42" });
    await card(page, "e2e-2").waitFor({ timeout: 1000 });
    assert.equal(await page.locator('[data-column="preparing"] [data-order-id="e2e-1"]').count(), 1);
    // Other stores' orders stay off this board.
    await publishOrder(herald, { id: "e2e-other", version: 1, store: "7" });
    await publishOrder(herald, { id: "e2e-3", version: 1, store: "42" });
    await card(page, "e2e-3").waitFor({ timeout: 1000 });
    assert.equal(await card(page, "e2e-other").count(), 0);
    await page.screenshot({ path: path.join(ARTIFACTS, "board.png"), fullPage: true });
  });

  test("reconnects after its socket is cut and shows what was published meanwhile (or says it cannot)", async (t) => {
    const page = await open(t, `${herald.httpUrl}/board.html?store=43`);
    await page.locator('#conn[data-state="connected"]').waitFor({ timeout: 10000 });
    await publishOrder(herald, { id: "e2e-r1", version: 1, store: "43" });
    await card(page, "e2e-r1").waitFor({ timeout: 1000 });
    const first = await page.evaluate(() => window.herald.connectionId);

    // Cut the network, then the socket: the page cannot reconnect until the network is back.
    await browser.setOffline(true);
    const kicked = await herald.ctl("kick", first, "--code", "4000", "--reason", "e2e cut");
    assert.equal(kicked.code, 0, kicked.stderr);
    await page.locator('#conn:not([data-state="connected"])').waitFor({ timeout: 5000 });
    await page.screenshot({ path: path.join(ARTIFACTS, "board-reconnecting.png") });
    await publishOrder(herald, { id: "e2e-r1", version: 2, status: "ready", store: "43" });
    await publishOrder(herald, { id: "e2e-gap", version: 1, store: "43" });
    await browser.setOffline(false);

    await waitFor(async () => (await page.evaluate(() => window.herald.state === "connected" && window.herald.connectionId)) !== first, "the page's reconnect", 15000);
    // Recovery (or a snapshot) brings the missed versions; a server without either must make
    // the page say its data may be stale instead of showing a silently incomplete board.
    await waitFor(async () => (await card(page, "e2e-gap").count()) > 0 || (await page.locator("#banner:not([hidden])").count()) > 0, "the gap order or the resync banner", 5000);
    if (await card(page, "e2e-gap").count()) {
      assert.equal(await page.locator('[data-column="ready"] [data-order-id="e2e-r1"]').count(), 1);
      t.diagnostic("missed publications recovered");
    } else {
      assert.match(await page.locator("#banner").innerText(), /could not be recovered/);
      t.diagnostic("server offers no recovery/snapshot: the page shows the resync banner");
    }
    // Live again.
    await publishOrder(herald, { id: "e2e-r2", version: 1, store: "43" });
    await card(page, "e2e-r2").waitFor({ timeout: 1000 });
    await publishOrder(herald, { id: "e2e-r1", version: 3, status: "shipped", store: "43" });
    await page.locator('[data-column="shipped"] [data-order-id="e2e-r1"]').waitFor({ timeout: 1000 });
    await page.screenshot({ path: path.join(ARTIFACTS, "board-after-reconnect.png"), fullPage: true });
  });
});

describe("board fed by heraldctl simulate", () => {
  test("fills with a simulated store's orders across the lifecycle columns", async (t) => {
    const page = await open(t, `${herald.httpUrl}/board.html?store=44`);
    await page.locator('#conn[data-state="connected"]').waitFor({ timeout: 10000 });
    const sim = await herald.ctl("simulate", "--stores", "44", "--rate", "6", "--step", "0.8", "--duration", "6", "--seed", "11", "--quiet");
    assert.equal(sim.code, 0, sim.stderr);
    const count = async (column) => page.locator(`[data-column="${column}"] .card`).count();
    assert.ok((await page.locator(".card").count()) >= 10, "at least ten orders on the board");
    let columns = 0;
    for (const c of ["created", "accepted", "preparing", "ready", "shipped", "done"]) if ((await count(c)) > 0) columns += 1;
    assert.ok(columns >= 4, `orders in only ${columns} columns`);
    await page.screenshot({ path: path.join(ARTIFACTS, "board-simulated.png") });
  });
});

describe("demo pages with JWT auth", () => {
  const SECRET = "e2e-secret";
  let secured;
  before(async () => {
    secured = await Herald.start({ args: ["--jwt-hs256-secret", SECRET] });
  });
  after(() => secured.stop());

  test("the board authenticates with ?token= and is refused a store the token does not allow", async (t) => {
    const token = await mintToken({ sub: "merchant-42", channels: "store:42", secret: SECRET });
    const page = await open(t, `${secured.httpUrl}/board.html?store=42&token=${token}`);
    await page.locator('#conn[data-state="connected"]').waitFor({ timeout: 10000 });
    assert.match(await page.locator("#conn-id").innerText(), /user merchant-42/);
    await publishOrder(secured, { id: "e2e-auth-1", version: 1, store: "42" });
    await card(page, "e2e-auth-1").waitFor({ timeout: 1000 });

    const other = await open(t, `${secured.httpUrl}/board.html?store=7&token=${token}`);
    await other.locator("#banner:not([hidden])").waitFor({ timeout: 10000 });
    assert.match(await other.locator("#banner").innerText(), /PERMISSION_DENIED|not allowed/);
  });
});

describe("customer tracking page", () => {
  test("follows one order to delivery", async (t) => {
    const page = await open(t, `${herald.httpUrl}/track.html?order=e2e-t1`);
    await page.locator('#conn[data-state="connected"]').waitFor({ timeout: 10000 });
    await publishOrder(herald, { id: "e2e-t1", version: 1, status: "accepted", store: "42", customer: "c-9", item: "pa-carbonara:Spaghetti Carbonara:1:1190" });
    await page.locator('#status-text[data-status="accepted"]').waitFor({ timeout: 1000 });
    await publishOrder(herald, { id: "e2e-t1", version: 2, status: "shipped", store: "42", customer: "c-9" });
    await page.locator('#status-text[data-status="shipped"]').waitFor({ timeout: 1000 });
    assert.equal(await page.locator("#status-text").innerText(), "On its way");
    assert.equal(await page.locator("#timeline li.done").count(), 4);
    await page.screenshot({ path: path.join(ARTIFACTS, "track.png"), fullPage: true });
    await publishOrder(herald, { id: "e2e-t1", version: 3, status: "delivered", store: "42", customer: "c-9" });
    await page.locator('#status-text[data-status="delivered"]').waitFor({ timeout: 1000 });
  });
});

describe("worker page", () => {
  test("receives a dispatched task and acks it", async (t) => {
    const page = await open(t, `${herald.httpUrl}/worker.html?queue=couriers`);
    await page.locator('#conn[data-state="connected"]').waitFor({ timeout: 10000 });
    const r = await herald.ctl("dispatch", "couriers", JSON.stringify({ orderId: "e2e-w1", address: "12 Canal Rd" }), "--json");
    if (r.code !== 0 && /UNIMPLEMENTED/.test(r.stderr)) {
      await page.screenshot({ path: path.join(ARTIFACTS, "worker-no-dispatch.png") });
      t.skip("this herald does not implement DispatchTask yet");
      return;
    }
    assert.equal(r.code, 0, r.stderr);
    const row = page.locator(".task").first();
    await row.waitFor({ timeout: 2000 });
    assert.match(await row.innerText(), /Deliver order #e2e-w1/);
    await row.getByRole("button", { name: /acknowledge/ }).click();
    await page.locator('.task[data-state="acked"]').waitFor({ timeout: 2000 });
    await page.screenshot({ path: path.join(ARTIFACTS, "worker.png"), fullPage: true });
  });
});
