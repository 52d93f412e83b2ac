// Headless Debian chromium driven by playwright-core (never a downloaded browser), for the e2e
// tests: launch() once per file, open() a page whose errors fail the test.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const ARTIFACTS = process.env.HERALD_ARTIFACTS ?? path.join(root, "build/default/test-artifacts");
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** Starts chromium; returns {browser, close()}. */
export async function launch() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "herald-e2e-chromium-"));
  const browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1440, height: 900 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  return {
    browser,
    async close() {
      await browser.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/**
 * A new page of `browser` at `url`; page errors and console errors (other than WebSocket ones,
 * which reconnect tests cause on purpose, and those matching `expected`) fail the test `t` when it
 * ends. `page.problems` lists them. The filter applies at the end, so an expected error Chromium
 * logs late (after the assertion that caused it) is forgiven too.
 */
export async function open(t, browser, url, { expected = null } = {}) {
  const page = await browser.newPage();
  const problems = [];
  page.problems = problems;
  page.on("pageerror", (err) => problems.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => msg.type() === "error" && problems.push(`console: ${msg.text()}`));
  t.after(async () => {
    await page.close();
    const unexpected = problems.filter((p) => !p.includes("WebSocket") && !(expected && expected.test(p)));
    assert.deepEqual(unexpected, [], "errors in the page");
  });
  await page.goto(url);
  return page;
}
