// The chat room demo (chat.html) in real Chromium: two pages in one room, as the Ratchet chat
// tutorial runs it — each sees the other arrive (presence + memberJoined), a message typed on one
// appears on both (client publish), a page that was away and reloads recovers what was said
// meanwhile, and a page that closes leaves the other's member list (memberLeft).
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, test } from "node:test";

import { Herald } from "../js/support/herald.mjs";
import { ARTIFACTS, launch, open } from "./support/chromium.mjs";

let chromium;
let herald;

before(async () => {
  chromium = await launch();
  herald = await Herald.start({
    args: ["--presence-prefixes", "room:", "--join-leave-prefixes", "room:", "--client-publish-prefixes", "room:"],
  });
});

after(async () => {
  await chromium?.close();
  await herald?.stop();
});

test("two pages chat in one room and see each other come and go", async (t) => {
  const url = `${herald.httpUrl}/chat.html?room=e2e`;
  const alice = await open(t, chromium.browser, `${url}&name=Alice`);
  await alice.locator('#conn[data-state="connected"]').waitFor({ timeout: 10000 });
  await alice.locator("#member-count", { hasText: "1" }).waitFor({ timeout: 5000 });
  const bob = await open(t, chromium.browser, `${url}&name=Bob`);
  await bob.locator('#conn[data-state="connected"]').waitFor({ timeout: 10000 });
  // Each sees two members: Bob from presence, Alice from Bob's memberJoined.
  await alice.locator("#member-count", { hasText: "2" }).waitFor({ timeout: 5000 });
  await bob.locator("#member-count", { hasText: "2" }).waitFor({ timeout: 5000 });

  await alice.fill("#text", "hello Bob");
  await alice.click("#send button");
  await bob.locator("#messages li", { hasText: "Alice: hello Bob" }).waitFor({ timeout: 5000 });
  await alice.locator("#messages li.mine", { hasText: "hello Bob" }).waitFor({ timeout: 5000 });
  await bob.fill("#text", "hi Alice");
  await bob.press("#text", "Enter");
  await alice.locator("#messages li", { hasText: "Bob: hi Alice" }).waitFor({ timeout: 5000 });
  // Named by their messages in the member list.
  await alice.locator("#members li", { hasText: "Bob" }).waitFor({ timeout: 5000 });
  await alice.screenshot({ path: path.join(ARTIFACTS, "chat-alice.png"), fullPage: true });

  // Bob goes away; Alice writes meanwhile; Bob's reload shows what he had and recovers the rest
  // from the room's history (the page subscribes from its last position).
  await bob.evaluate(() => window.herald.close());
  await alice.locator("#member-count", { hasText: "1" }).waitFor({ timeout: 5000 });
  await alice.fill("#text", "while you were away");
  await alice.press("#text", "Enter");
  await alice.locator("#messages li", { hasText: "while you were away" }).waitFor({ timeout: 5000 });
  await bob.reload();
  await bob.locator('#conn[data-state="connected"]').waitFor({ timeout: 10000 });
  await bob
    .locator('#messages li[data-source="recovered"]', { hasText: "Alice: while you were away" })
    .waitFor({ timeout: 5000 });
  assert.equal(await bob.locator("#messages li").count(), 3, "each message once after the reload");
  await alice.locator("#member-count", { hasText: "2" }).waitFor({ timeout: 5000 });

  // Bob closes his page: Alice's list drops to one and her log says he left.
  await bob.close();
  await alice.locator("#member-count", { hasText: "1" }).waitFor({ timeout: 5000 });
  await alice.locator("#log", { hasText: "left" }).waitFor({ timeout: 5000 });
});
