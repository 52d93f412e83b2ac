#!/usr/bin/env python3
"""A scriptable HTTP backend for Herald's webhooks (docs/api.md "Webhooks"), for the tests.

    webhook_backend.py PORT SECRET

Serves 127.0.0.1:PORT (0: a free one; it prints "listening on <port>"), HTTP/1.1 keep-alive, one
thread per connection. Every POST is checked like a real backend should: X-Herald-Signature must
be "sha256=" + hex HMAC-SHA256(SECRET, X-Herald-Timestamp + "." + body), else 401. Each request
is recorded; GET /_requests returns them as JSON: [{"path", "headers" (the X-Herald-*,
Content-Type and User-Agent ones), "body" (parsed), "status" (what it answered), "verified"}].
What it answers depends on the path and the body (see the handlers below), so one backend serves
every test scenario.
"""
import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
SECRET = sys.argv[2].encode()
LOCK = threading.Lock()
REQUESTS = []
SEEN_IDS = set()  # request ids /flaky has failed once


def connect(body):
    token = body.get("token", "")
    data = body.get("data")
    if not token:
        # No token: the page says who it is in `data` (a real backend reads its session cookie).
        login = data.get("login", "") if isinstance(data, dict) else ""
        if not login:
            return 200, {"error": {"code": "PERMISSION_DENIED", "message": "not logged in"}}
        token = login
    if token == "reject":
        return 200, {"error": {"code": "PERMISSION_DENIED", "message": "banned user"}}
    if token == "kick":
        return 200, {"disconnect": {"code": 4403, "reason": "go away"}}
    if token == "nouser":
        return 200, {"result": {"data": {}}}
    if token == "empty":  # `{}`: go ahead, but a connect needs a user
        return 200, {}
    if token == "fail":
        return 500, "boom"
    if token.startswith("slow-"):  # slow-SECONDS: answers late, then accepts
        time.sleep(float(token[5:]))
    return 200, {"result": {
        "user": "u-" + token,
        "data": {"plan": "gold", "echo": body.get("data"), "cookie": body.get("headers", {}).get("Cookie", "")},
        "channels": ["user:u-" + token],
        "allow": ["room:*"],
    }}


def subscribe(body):
    channel = body.get("channel", "")
    if channel.startswith("secret:"):
        return 200, {"error": {"code": "PERMISSION_DENIED", "message": "not for you"}}
    if channel.startswith("kick:"):
        return 200, {"disconnect": {"code": 4409, "reason": "kicked on subscribe"}}
    return 200, {"result": {}}


def message(body):
    data = body.get("data")
    if isinstance(data, dict) and data.get("text") == "bad":
        return 200, {"error": {"code": "INVALID_ARGUMENT", "message": "bad text"}}
    return 200, {}


def rpc(body):
    method = body.get("method")
    data = body.get("data")
    if method == "echo":
        return 200, {"result": {"echo": data, "user": body.get("user", "")}}
    if method == "fail":
        return 500, "boom"
    if method == "slow":
        time.sleep(float(data) if isinstance(data, (int, float)) else 2.0)
        return 200, {"result": "late"}
    if method == "huge":
        return 200, {"result": "x" * (2 * 1024 * 1024)}
    if method == "notjson":
        return 200, "this is not json {"
    if method == "deep":
        return 200, "{\"result\":" + "[" * 5000 + "]" * 5000 + "}"
    if method == "refuse":
        return 200, {"error": {"code": "NOT_FOUND", "message": "no such order"}}
    if method == "strange":
        return 200, {"error": {"code": "OUT_OF_STOCK", "message": "sold out"}}
    return 200, {"error": {"code": "UNIMPLEMENTED", "message": "no method " + str(method)}}


def flaky(headers):
    # The first attempt of each request id fails, the next succeeds.
    rid = headers.get("X-Herald-Request-Id", "")
    with LOCK:
        if rid not in SEEN_IDS:
            SEEN_IDS.add(rid)
            return 500, "try again"
    return 200, {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def reply(self, status, payload):
        data = payload if isinstance(payload, str) else json.dumps(payload)
        data = data.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/_requests":
            with LOCK:
                return self.reply(200, REQUESTS)
        self.reply(404, {})

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        timestamp = self.headers.get("X-Herald-Timestamp", "")
        expected = "sha256=" + hmac.new(SECRET, timestamp.encode() + b"." + raw,
                                        hashlib.sha256).hexdigest()
        verified = hmac.compare_digest(expected, self.headers.get("X-Herald-Signature", ""))
        fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) < 300
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        headers = {k: v for k, v in self.headers.items()
                   if k.lower().startswith("x-herald-") or k.lower() in ("content-type", "user-agent")}
        if not (verified and fresh):
            status, payload = 401, {"error": "bad signature"}
        elif self.path == "/connect":
            status, payload = connect(body)
        elif self.path == "/subscribe":
            status, payload = subscribe(body)
        elif self.path == "/message":
            status, payload = message(body)
        elif self.path == "/rpc":
            status, payload = rpc(body)
        elif self.path == "/hook":
            status, payload = 200, {}
        elif self.path == "/flaky":
            status, payload = flaky(self.headers)
        elif self.path == "/down":
            status, payload = 500, "down"
        else:
            status, payload = 404, {}
        with LOCK:
            REQUESTS.append({"path": self.path, "headers": headers, "body": body,
                             "status": status, "verified": verified})
        self.reply(status, payload)


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True
    print("listening on", server.server_address[1], flush=True)
    server.serve_forever()
