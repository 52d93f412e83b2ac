// herald.js over wss:// against a herald started with --tls-cert (a throwaway certificate).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import WebSocket from "ws";

import { Herald as Client } from "../../client/js/herald.js";
import { Herald, waitFor } from "./support/herald.mjs";

describe("herald.js over TLS", () => {
  let herald, dir, ca;
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "herald-js-tls-"));
    await promisify(execFile)("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
      "-keyout", path.join(dir, "key.pem"), "-out", path.join(dir, "cert.pem"),
    ]);
    ca = readFileSync(path.join(dir, "cert.pem"));
    herald = await Herald.start({
      args: ["--tls-cert", path.join(dir, "cert.pem"), "--tls-key", path.join(dir, "key.pem")],
    });
  });
  after(async () => {
    await herald.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("connects to wss://, subscribes and receives a publication", async (t) => {
    // A browser trusts the certificate through its CA store; `ws` is given the CA here.
    class TrustingWebSocket extends WebSocket {
      constructor(url, protocols) {
        super(url, protocols, { ca });
      }
    }
    const url = `wss://${herald.wsAddress}/ws`;
    const c = new Client({ url, WebSocket: TrustingWebSocket });
    t.after(() => c.close());
    await c.connect();
    assert.equal(c.state, "connected");
    const sub = c.subscribe("news");
    await sub.ready();
    const got = [];
    sub.on("publication", (p) => got.push(p));
    const r = await herald.ctl("--ca", path.join(dir, "cert.pem"), "publish", "news", '{"text":"over tls"}');
    assert.equal(r.code, 0, r.stderr);
    await waitFor(() => got.length === 1, "the publication");
    assert.equal(got[0].data.text, "over tls");
  });

  test("a plain ws:// client cannot connect to the TLS port", async () => {
    const ws = new WebSocket(`ws://${herald.wsAddress}/ws`);
    const outcome = await new Promise((resolve) => {
      ws.on("open", () => resolve("open"));
      ws.on("error", () => resolve("error"));
      ws.on("close", () => resolve("closed"));
    });
    assert.notEqual(outcome, "open");
  });
});
