// herald serves the demo pages and herald.js (--static-dir): Content-Types, and nothing outside
// the directory, whatever the request path looks like.
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { execFile, spawn } from "node:child_process";

import { HERALD_BIN, Herald, STATIC_DIR, waitFor } from "./support/herald.mjs";

/** A raw GET: the path is sent exactly as given (no client-side normalisation). */
function get(address, rawPath, method = "GET") {
  return request(address, rawPath, method);
}

function request(address, rawPath, method, headers = {}) {
  const [host, port] = address.split(":");
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, path: rawPath, method, headers }, (res) => {
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

  test("only GET and HEAD: another method on a file is 405 with Allow", async () => {
    const head = await get(herald.wsAddress, "/index.html", "HEAD");
    assert.equal(head.status, 200);
    assert.equal(head.body, "");
    for (const method of ["POST", "PUT", "DELETE"]) {
      const r = await get(herald.wsAddress, "/index.html", method);
      assert.equal(r.status, 405, method);
      assert.equal(r.headers["allow"], "GET, HEAD, OPTIONS");
      assert.ok(!r.body.includes("<h1>home</h1>"));
    }
    assert.equal((await get(herald.wsAddress, "/missing.html", "POST")).status, 404);
  });
});

describe("the demo pages in client/js", () => {
  let herald;
  before(async () => {
    herald = await Herald.start(); // tests/js/support passes --static-dir client/js
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

  test("may be loaded from any origin (CORS), the control API may not", async () => {
    for (const p of ["/herald.js", "/board.html", "/demo/board.js", "/demo/demo.css"]) {
      const r = await get(herald.wsAddress, p);
      assert.equal(r.status, 200, p);
      assert.equal(r.headers["access-control-allow-origin"], "*", p);
    }
    // A preflight, as a browser sends it before a cross-origin fetch with custom headers.
    const preflight = await request(herald.wsAddress, "/herald.js", "OPTIONS", {
      Origin: "https://shop.example",
      "Access-Control-Request-Method": "GET",
      "Access-Control-Request-Headers": "x-requested-with",
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers["access-control-allow-origin"], "*");
    assert.equal(preflight.headers["access-control-allow-methods"], "GET, HEAD, OPTIONS");
    assert.equal(preflight.headers["access-control-allow-headers"], "x-requested-with");
    assert.equal(preflight.body, "");
    assert.equal((await request(herald.wsAddress, "/missing.js", "OPTIONS", { Origin: "https://shop.example" })).status, 404);
    // The HTTP/JSON API carries the API key's power: no CORS for it.
    const api = await request(herald.wsAddress, "/api/v1/Stats", "OPTIONS", { Origin: "https://shop.example" });
    assert.equal(api.headers["access-control-allow-origin"], undefined);
    assert.equal((await get(herald.wsAddress, "/healthz")).headers["access-control-allow-origin"], undefined);
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

describe("the default --static-dir is found next to the executable", () => {
  // herald run as a user gets it: no absolute path of the build machine compiled in.
  let tmp;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "herald-prefix-"));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  /** herald placed at `<tmp>/<prefix>/bin/herald` (a hard link, or a copy across file systems). */
  function install(prefix) {
    const bin = path.join(tmp, prefix, "bin/herald");
    fs.mkdirSync(path.dirname(bin), { recursive: true });
    try {
      fs.linkSync(HERALD_BIN, bin);
    } catch {
      fs.copyFileSync(HERALD_BIN, bin);
      fs.chmodSync(bin, 0o755);
    }
    return bin;
  }
  function run(bin, args) {
    return new Promise((resolve) =>
      execFile(bin, args, (err, stdout, stderr) => resolve({ code: err?.code ?? 0, stdout, stderr })),
    );
  }
  const systemDirs = ["/usr/local/share/herald/static", "/usr/share/herald/static"];

  test("from the build tree: the source tree's client/js", async () => {
    const r = await run(HERALD_BIN, ["--print-config"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^static-dir = "${STATIC_DIR.replace(/[/.]/g, "\\$&")}"  # default$`, "m"));
  });

  test("installed: <prefix>/share/herald/static beside <prefix>/bin/herald", async () => {
    const bin = install("opt");
    const www = path.join(tmp, "opt/share/herald/static");
    fs.mkdirSync(www, { recursive: true });
    fs.writeFileSync(path.join(www, "herald.js"), "export class Herald {}");
    const r = await run(bin, ["--print-config"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.includes(`static-dir = "${www}"  # default\n`), r.stdout);
    const help = await run(bin, ["--help"]);
    assert.ok(help.stdout.includes(`the first that holds herald.js of ${www}, `), help.stdout);
    assert.ok(help.stdout.includes("/usr/share/herald/static"), help.stdout);
  });

  test("found nowhere: herald serves the API alone and says where it looked", async (t) => {
    if (systemDirs.some((d) => fs.existsSync(path.join(d, "herald.js")))) {
      t.skip("herald's static files are installed on this machine");
      return;
    }
    const bin = install("bare");
    const proc = spawn(bin, ["--ws-listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--threads", "1"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    proc.stdout.on("data", (d) => (stdout += d));
    proc.stderr.on("data", (d) => (stderr += d));
    try {
      await waitFor(() => /ws listening on (\S+)/.test(stdout), "ws listening");
      const address = /ws listening on (\S+)/.exec(stdout)[1];
      assert.match(stderr, /herald: no demo pages found \(looked for herald\.js in /);
      assert.ok(stderr.includes(path.join(tmp, "bare/share/herald/static")), stderr);
      assert.equal((await get(address, "/herald.js")).status, 404);
      assert.equal((await get(address, "/healthz")).status, 200);
    } finally {
      proc.kill("SIGKILL");
    }
    // A refused start is one line, the error's: no warning about the pages before it.
    const refused = await new Promise((resolve) =>
      execFile(bin, ["--webhook-events", "bogus"], (err, out, errText) => resolve({ code: err?.code, errText })),
    );
    assert.equal(refused.code, 2);
    assert.equal(refused.errText.trim().split("\n").length, 1, refused.errText);
    assert.match(refused.errText, /^herald: .*bogus/);
  });
});

test("herald --version prints one line and binds nothing", async () => {
  const r = await new Promise((resolve) =>
    execFile(HERALD_BIN, ["--version", "--ws-listen", "127.0.0.1:1"], (err, stdout, stderr) =>
      resolve({ code: err?.code ?? 0, stdout, stderr }),
    ),
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^herald \d+\.\d+\.\d+( \(git [^)\s]+\))?\n$/);
  assert.equal(r.stderr, "");
});
