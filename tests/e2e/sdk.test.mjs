// herald.js used the way the README shows it, from a page of another origin, in real Chromium:
// the snippet of README.md, as written there (only the address changed), on a page served by a
// second HTTP server on another host name and port.
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { Herald, publishOrder, waitFor } from "../js/support/herald.mjs";
import { launch, open } from "./support/chromium.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** The README's first ```html snippet that imports herald.js. */
export function readmeSnippet() {
  const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
  const blocks = [...readme.matchAll(/```html\n([\s\S]*?)```/g)].map((m) => m[1]);
  const snippet = blocks.find((b) => b.includes("/herald.js"));
  assert.ok(snippet, "README.md has an html snippet importing /herald.js");
  return snippet;
}

/** An HTTP server on `host`:0 answering every GET with `html`; resolves its origin. */
async function servePage(html, host) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end(html);
  });
  await new Promise((resolve) => server.listen(0, host, resolve));
  return { server, origin: `http://${host}:${server.address().port}` };
}

let chromium;
let herald;
let site;

before(async () => {
  chromium = await launch();
  herald = await Herald.start();
});

after(async () => {
  await chromium?.close();
  await herald?.stop();
  site?.server.close();
});

test("the README snippet works from a page of another origin", async (t) => {
  const snippet = readmeSnippet().replaceAll("127.0.0.1:8080", herald.wsAddress);
  assert.ok(snippet.includes(`http://${herald.wsAddress}/herald.js`), snippet);
  // localhost vs 127.0.0.1, and another port: another origin on both counts.
  site = await servePage(`<!doctype html><title>shop</title>\n${snippet}`, "localhost");
  const page = await open(t, chromium.browser, `${site.origin}/`);
  const logged = [];
  page.on("console", async (msg) => {
    if (msg.type() === "log") logged.push(await msg.args()[0]?.jsonValue());
  });
  // The page's socket is subscribed once ListConnections shows it on store:42, from its origin.
  await waitFor(async () => {
    const r = await herald.ctl("conns", "--channel", "store:42", "--json");
    return r.stdout.split("\n").filter(Boolean).some((l) => JSON.parse(l).origin === site.origin);
  }, "the snippet's subscription to store:42");
  await publishOrder(herald, { id: "sdk-x1", version: 1, store: "42" });
  await waitFor(() => logged.some((d) => d?.id === "sdk-x1"), "the publication logged by the snippet", 5000);
  assert.deepEqual(page.problems, []);
});
