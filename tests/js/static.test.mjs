// herald serves the demo pages and herald.js (--static-dir): Content-Types, and nothing outside
// the directory, whatever the request path looks like.
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { execFile } from "node:child_process";

import { HERALD_BIN, Herald } from "./support/herald.mjs";

/** A raw GET: the path is sent exactly as given (no client-side normalisation). */
function get(address, rawPath, method = "GET") {
  const [host, port] = address.split(":");
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, path: rawPath, method }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("static files", () => {
  let herald;
  let tmp;
  before(async () => {
    // A static dir with a secret next to it and a symlink pointing out of it.
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "herald-static-"));
    fs.mkdirSync(path.join(tmp, "www/sub"), { recursive: true });
    fs.writeFileSync(path.join(tmp, "secret.txt"), "TOP-SECRET");
    fs.writeFileSync(path.join(tmp, "www/index.html"), "<h1>home</h1>");
    fs.writeFileSync(path.join(tmp, "www/sub/page.html"), "<p>sub</p>");
    fs.writeFileSync(path.join(tmp, "www/.hidden"), "HIDDEN");
    fs.symlinkSync(path.join(tmp, "secret.txt"), path.join(tmp, "www/link.txt"));
    herald = await Herald.start({ args: ["--static-dir", path.join(tmp, "www")] });
  });
  after(async () => {
    await herald.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test("serves files with their Content-Type; / is index.html", async () => {
    const index = await get(herald.wsAddress, "/");
    assert.equal(index.status, 200);
    assert.equal(index.headers["content-type"], "text/html; charset=utf-8");
    assert.equal(index.headers["x-content-type-options"], "nosniff");
    assert.equal(index.body, "<h1>home</h1>");
    const sub = await get(herald.wsAddress, "/sub/page.html?cache=1");
    assert.equal(sub.status, 200);
    assert.equal(sub.body, "<p>sub</p>");
    assert.equal((await get(herald.wsAddress, "/sub/")).status, 404); // no index.html there
    assert.equal((await get(herald.wsAddress, "/missing.html")).status, 404);
    assert.equal((await get(herald.wsAddress, "/healthz")).status, 200); // other routes intact
  });

  test("never serves anything outside the directory, hidden files or symlinks out", async () => {
    const attempts = [
      "/../secret.txt",
      "/sub/../../secret.txt",
      "/%2e%2e/secret.txt",
      "/%2E%2E/secret.txt",
      "/sub/%2e%2e/%2e%2e/secret.txt",
      "/..%2fsecret.txt",
      "/sub%2f..%2f..%2fsecret.txt",
      "/..%5csecret.txt",
      "/..\\secret.txt",
      "//secret.txt",
      "/./index.html",
      "/.hidden",
      "/link.txt",
      "/index.html%00.js",
      "/%",
      "/%zz",
      `/${"../".repeat(12)}etc/passwd`,
      "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    ];
    for (const p of attempts) {
      const r = await get(herald.wsAddress, p);
      assert.notEqual(r.status, 200, `${p} answered 200`);
      assert.ok(!r.body.includes("TOP-SECRET") && !r.body.includes("HIDDEN") && !r.body.includes("root:"), `${p} leaked: ${r.body}`);
    }
  });

  test("only GET and HEAD", async () => {
    const head = await get(herald.wsAddress, "/index.html", "HEAD");
    assert.equal(head.status, 200);
    assert.equal(head.body, "");
    const post = await get(herald.wsAddress, "/index.html", "POST");
    assert.notEqual(post.status, 200);
  });
});

describe("the demo pages in client/js", () => {
  let herald;
  before(async () => {
    herald = await Herald.start(); // --static-dir is the source tree's client/js
  });
  after(() => herald.stop());

  test("are served with the right types", async () => {
    const expect = {
      "/": "text/html; charset=utf-8",
      "/board.html": "text/html; charset=utf-8",
      "/track.html": "text/html; charset=utf-8",
      "/worker.html": "text/html; charset=utf-8",
      "/herald.js": "text/javascript; charset=utf-8",
      "/demo/board.js": "text/javascript; charset=utf-8",
      "/demo/demo.css": "text/css; charset=utf-8",
    };
    for (const [p, type] of Object.entries(expect)) {
      const r = await get(herald.wsAddress, p);
      assert.equal(r.status, 200, p);
      assert.equal(r.headers["content-type"], type, p);
    }
    assert.match((await get(herald.wsAddress, "/herald.js")).body, /export class Herald/);
  });
});

test("a --static-dir that is not a directory is a configuration error (exit 2)", async () => {
  const result = await new Promise((resolve) =>
    execFile(HERALD_BIN, ["--ws-listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--static-dir", "/nonexistent/herald-www"], (err, stdout, stderr) =>
      resolve({ code: err?.code ?? 0, stderr }),
    ),
  );
  assert.equal(result.code, 2);
  assert.match(result.stderr, /--static-dir: '\/nonexistent\/herald-www' is not a directory/);
});
