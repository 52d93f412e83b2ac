// Test support: runs the real herald binary on ephemeral ports and heraldctl against it.
import { spawn, execFile } from "node:child_process";
import { createHmac } from "node:crypto";
import { once } from "node:events";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const HERALD_BIN = process.env.HERALD_BIN ?? path.join(root, "build/default/server/herald");
export const HERALDCTL_BIN =
  process.env.HERALDCTL_BIN ?? path.join(root, "build/default/client/cli/heraldctl");
export const STATIC_DIR = path.join(root, "client/js");

/** Resolves when `condition()` is truthy; rejects after `timeoutMs` naming `what`. */
export async function waitFor(condition, what, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * A running herald. start({args, wsListen}) spawns it and waits for both listening lines.
 */
export class Herald {
  static async start({ args = [], wsListen = "127.0.0.1:0" } = {}) {
    const h = new Herald();
    h.stderr = "";
    const staticDir = args.includes("--static-dir") ? [] : ["--static-dir", STATIC_DIR];
    h.proc = spawn(
      HERALD_BIN,
      ["--ws-listen", wsListen, "--grpc-listen", "127.0.0.1:0", "--threads", "2", "--drain-timeout", "2", ...staticDir, ...args],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    h.proc.stderr.on("data", (d) => (h.stderr += d));
    h.exited = once(h.proc, "exit");
    let out = "";
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`herald did not start:\n${h.stderr}`)), 20000);
      h.proc.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`herald exited with ${code}:\n${h.stderr}`));
      });
      h.proc.stdout.on("data", (d) => {
        out += d;
        const ws = /ws listening on (\S+)/.exec(out);
        const grpc = /grpc listening on (\S+)/.exec(out);
        if (ws && grpc) {
          clearTimeout(timer);
          h.wsAddress = ws[1];
          h.grpcAddress = grpc[1];
          resolve();
        }
      });
    });
    h.wsUrl = `ws://${h.wsAddress}/ws`;
    h.httpUrl = `http://${h.wsAddress}`;
    return h;
  }

  /** Stops herald with `signal` and waits for it to exit. */
  async stop(signal = "SIGTERM") {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill(signal);
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), 10000);
    await this.exited;
    clearTimeout(timer);
  }

  /** Runs heraldctl against this herald; resolves {code, stdout, stderr}. */
  ctl(...args) {
    return heraldctl("--server", this.grpcAddress, ...args);
  }
}

export function heraldctl(...args) {
  return new Promise((resolve) => {
    execFile(HERALDCTL_BIN, args, { timeout: 20000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? -1) : 0, stdout, stderr });
    });
  });
}

/** Mints an HS256 token with heraldctl token. */
export async function mintToken({ sub, channels = "", ttl = 3600, secret }) {
  const r = await heraldctl("token", "--sub", sub, "--channels", channels, "--ttl", String(ttl), "--secret", secret);
  if (r.code !== 0) throw new Error(`heraldctl token failed: ${r.stderr}`);
  return r.stdout.trim();
}

/**
 * Signs an HS256 token in-process (node:crypto HMAC), for tests whose getToken must be fast even
 * where heraldctl starts slowly (sanitizer builds). heraldctl token is tested on its own.
 */
export function signHs256({ sub, channels = [], ttl = 3600, secret }) {
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const input = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, exp: Math.floor(Date.now() / 1000) + ttl, channels })}`;
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
}

/** Publishes one order version with heraldctl publish-order. */
export async function publishOrder(herald, { id, version, status = "created", store = "42", customer = "c-1", item = "sku-1:Margherita:2:950" }) {
  const r = await herald.ctl("publish-order", "--id", id, "--version", String(version), "--status", status, "--store", store, "--customer", customer, "--item", item, "--json");
  if (r.code !== 0) throw new Error(`publish-order failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/**
 * tests/support/webhook_backend.py, a real HTTP backend for herald's proxies and webhooks that
 * checks every signature with `secret`, on a free port. `requests(path)` lists what it received.
 */
export class WebhookBackend {
  static async start(secret) {
    const b = new WebhookBackend();
    b.proc = spawn("python3", [path.join(root, "tests/support/webhook_backend.py"), "0", secret], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    b.exited = once(b.proc, "exit");
    let out = "";
    const port = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("webhook_backend.py did not start")), 10000);
      b.proc.on("exit", (code) => reject(new Error(`webhook_backend.py exited with ${code}`)));
      b.proc.stdout.on("data", (d) => {
        out += d;
        const m = /listening on (\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
    });
    b.base = `http://127.0.0.1:${port}`;
    return b;
  }

  url(p) {
    return this.base + p;
  }

  async requests(p) {
    const all = await (await fetch(this.url("/_requests"))).json();
    return p ? all.filter((r) => r.path === p) : all;
  }

  async stop() {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill("SIGTERM");
    await this.exited;
  }
}
