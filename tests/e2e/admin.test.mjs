// The admin page (/admin) in real Chromium against a herald with an API key: it refuses to work
// without the key (401), then shows live stats, lists a connected client and kicks it (the
// client's socket closes with the chosen code), lists channels and task queues, and its publish
// and publish-order forms reach a subscriber. Screenshots go to the test artifacts.
import assert from "node:assert/strict";
import { once } from "node:events";
import path from "node:path";
import { after, before, test } from "node:test";

import WebSocket from "ws";

import { Herald, waitFor } from "../js/support/herald.mjs";
import { ARTIFACTS, launch, open } from "./support/chromium.mjs";

const KEY = "admin-e2e-key";

let chromium;
let herald;

before(async () => {
  chromium = await launch();
  herald = await Herald.start({ args: ["--api-key", KEY] });
});

after(async () => {
  await chromium?.close();
  await herald?.stop();
});

/** A WebSocket client subscribed to `channel`; `messages` collects every frame it receives. */
async function subscriber(channel) {
  const ws = new WebSocket(herald.wsUrl);
  ws.messages = [];
  ws.on("message", (m) => ws.messages.push(JSON.parse(String(m))));
  await once(ws, "open");
  ws.send(JSON.stringify({ id: 1, subscribe: { channel } }));
  await waitFor(() => ws.messages.some((m) => m.id === 1), `the subscribe reply on ${channel}`);
  assert.equal(ws.messages.find((m) => m.id === 1).error, undefined);
  return ws;
}

// Chromium logs each of the page's 401 answers as a console error, some after the banner shows.
const EXPECTED_401 = { expected: /status of 401 \(Unauthorized\)/ };

test("without the API key the page refuses to work and says why", async (t) => {
  const page = await open(t, chromium.browser, `${herald.httpUrl}/admin`, EXPECTED_401);
  assert.match(page.url(), /\/admin\/$/, "/admin redirects to /admin/");
  const banner = page.locator("#banner");
  await banner.waitFor({ state: "visible" });
  assert.match(await banner.textContent(), /requires an API key \(401\)/);
  assert.equal(await page.locator("#app").isHidden(), true, "no data is shown");
  await page.screenshot({ path: path.join(ARTIFACTS, "admin-no-key.png") });

  await page.fill("#key", "wrong-key");
  await page.click("#key-form button[type=submit]");
  await waitFor(async () => /API key was refused/.test(await banner.textContent()), "the refusal of a wrong key");
  assert.equal(await page.locator("#app").isHidden(), true);
});

test("with the key: stats, channels, queues, kick a client, publish and publish an order", async (t) => {
  const sub = await subscriber("admin-e2e");
  const other = await subscriber("store:42");
  const dispatched = await herald.ctl("--api-key", KEY, "dispatch", "emails", '{"to":"a@example.com"}');
  assert.equal(dispatched.code, 0, dispatched.stderr);

  const page = await open(t, chromium.browser, `${herald.httpUrl}/admin/?interval=300`, EXPECTED_401);
  await page.locator("#banner").waitFor({ state: "visible" });
  await page.fill("#key", KEY);
  await page.click("#key-form button[type=submit]");
  await page.locator("#app").waitFor({ state: "visible" });

  // Live stats and the tables.
  await waitFor(async () => (await page.textContent("#v-connections")) === "2", "2 connections in the stats");
  assert.match(await page.textContent("#node"), /^node \S+/);
  await waitFor(async () => (await page.locator("#conns tbody tr[data-id]").count()) === 2, "both clients in the table");
  const channels = page.locator("#channels tbody tr", { hasText: "admin-e2e" });
  await channels.waitFor();
  assert.equal(await channels.locator("td.num").textContent(), "1");
  const emails = page.locator("#queues tbody tr", { hasText: "emails" });
  await emails.waitFor();
  assert.deepEqual(await emails.locator("td").allTextContents(), ["emails", "0", "1", "0", "1", "0", "0", "0"]);

  // Publish: the subscriber receives it, and deliveries show in the chart's value.
  await page.fill("#publish [name=channel]", "admin-e2e");
  await page.fill("#publish [name=data]", '{"hello":"from admin"}');
  await page.click("#publish button[type=submit]");
  await waitFor(() => sub.messages.some((m) => m.pub?.data?.hello === "from admin"), "the publication at the subscriber");
  // (the reply to the page's call may come after the publication reached the subscriber)
  const text = (selector, re) => async () => re.test(await page.textContent(selector));
  await waitFor(text("#publish-result", /Published at offset 1, queued to 1 connection/), "the publish result");
  await page.fill("#publish [name=data]", "{not json");
  await page.click("#publish button[type=submit]");
  await waitFor(text("#publish-result", /data: not valid JSON/), "the JSON error");

  // Publish an order: routed to store:42.
  await page.fill("#order [name=id]", "adm-1");
  await page.fill("#order [name=store]", "42");
  await page.fill("#order [name=total]", "1250");
  await page.selectOption("#order [name=status]", "PREPARING");
  await page.click("#order button[type=submit]");
  await waitFor(() => other.messages.some((m) => m.pub?.data?.id === "adm-1"), "the order at store:42");
  const order = other.messages.find((m) => m.pub?.data?.id === "adm-1").pub.data;
  assert.equal(order.status, "ORDER_STATUS_PREPARING");
  assert.deepEqual(order.total, { minorUnits: "1250", currency: "EUR" });
  await waitFor(text("#order-result", /Applied: version 1/), "the order result");
  await page.click("#order button[type=submit]");
  await waitFor(async () => /stale/.test(await page.textContent("#order-result")), "a repeated version reported stale");

  // Filters: by channel, then by a user nobody has.
  await page.fill("#conn-filter [name=channel]", "admin-e2e");
  await waitFor(async () => (await page.locator("#conns tbody tr[data-id]").count()) === 1, "the channel filter");
  await page.screenshot({ path: path.join(ARTIFACTS, "admin.png") });

  // Kick: the client's socket closes with the code chosen on the page.
  await page.fill("#kick-code", "4321");
  const closed = once(sub, "close");
  await page.click("#conns tbody tr[data-id] button");
  const [code, reason] = await closed;
  assert.equal(code, 4321);
  assert.equal(String(reason), "kicked from the admin page");
  // The live event feed (GET /api/v1/events) shows the kick.
  const kicked = page.locator("#events li.disconnect", { hasText: "code=4321 kicked from the admin page" });
  await kicked.waitFor();
  await waitFor(async () => /No connection matches/.test(await page.textContent("#conns tbody")), "the kicked row gone");
  await page.fill("#conn-filter [name=user]", "nobody");
  await page.fill("#conn-filter [name=channel]", "");
  await waitFor(async () => /No connection matches/.test(await page.textContent("#conns tbody")), "the user filter");
  await page.fill("#conn-filter [name=user]", "");
  await waitFor(async () => (await page.textContent("#v-connections")) === "1", "1 connection left in the stats");

  // The key stays for this tab: a reload works without asking again.
  await page.reload();
  await page.locator("#app").waitFor({ state: "visible" });
  assert.equal(await page.locator("#banner").isHidden(), true);
  await waitFor(text("#events-note", /GET \/api\/v1\/events/), "the event stream attached again");
  other.close();
});
