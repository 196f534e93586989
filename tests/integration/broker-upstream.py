#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# broker-upstream.py: the HTTPS upstream of the broker-container suite. A threaded HTTP/1.1
# server with TLS (a certificate from the test's own CA) that records what it saw, one JSON
# object per line in LOG (headers included: the test checks the real credential arrived and the
# phantom did not), and never echoes a header value back.
#   broker-upstream.py CERT KEY LOG PORTFILE
# Paths (under any prefix):
#   .../echo      any method: reads the body, answers {"ok":true,"body_len":N}
#   .../sse       text/event-stream: "first", then waits until .../sse-go is requested (at most
#                 20 s), then "second" and "third"; logs whether the go request released it
#   .../sse-go    releases the waiting SSE stream
#   .../upload    counts the body (Content-Length or chunked) and discards it: {"received":N}
#   .../status/N  answers status N with a small body
#   .../ws-echo   a WebSocket upgrade: 101 with the RFC 6455 accept value, then every byte that
#                 comes is sent back (frames are not parsed) until the client's EOF
import base64
import hashlib
import http.server
import json
import os
import socketserver
import ssl
import sys
import threading
import time

CERT, KEY, LOG, PORTFILE = sys.argv[1:5]
lock = threading.Lock()
go = threading.Event()


def log(obj):
    with lock, open(LOG, "a") as f:
        f.write(json.dumps(obj) + "\n")


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def body(self, discard=False):
        """Read the request body; returns (bytes or None when discarded, length)."""
        n = 0
        keep = [] if not discard else None
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left:
                    b = self.rfile.read(min(left, 1 << 20))
                    if not b:
                        raise ConnectionError("short chunk")
                    left -= len(b)
                    n += len(b)
                    if keep is not None:
                        keep.append(b)
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left:
                b = self.rfile.read(min(left, 1 << 20))
                if not b:
                    raise ConnectionError("short body")
                left -= len(b)
                n += len(b)
                if keep is not None:
                    keep.append(b)
        return (b"".join(keep) if keep is not None else None), n

    def reply(self, status, obj, ctype="application/json"):
        out = (json.dumps(obj) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def websocket(self, rec):
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        rec["websocket"] = True
        log(rec)
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        n = 0
        while True:  # what the client sent with its head is in rfile's buffer: read1 gets it
            b = self.rfile.read1(65536)
            if not b:
                break
            self.wfile.write(b)
            n += len(b)
        log({"ws_done": True, "echoed": n})
        self.close_connection = True

    def handle_any(self):
        path = self.path.split("?", 1)[0]
        rec = {"method": self.command, "path": self.path,
               "headers": [[k.lower(), v] for k, v in self.headers.items()]}
        if path.endswith("/ws-echo") and \
                (self.headers.get("Upgrade") or "").lower() == "websocket":
            self.websocket(rec)
            return
        if path.endswith("/upload"):
            _, n = self.body(discard=True)
            rec["received"] = n
            log(rec)
            self.reply(200, {"received": n})
            return
        _, n = self.body()
        rec["body_len"] = n
        log(rec)
        if path.endswith("/sse"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"data: first\n\n")
            self.wfile.flush()
            released = go.wait(20)
            go.clear()
            self.wfile.write(b"data: second\n\ndata: third\n\n")
            self.wfile.flush()
            log({"sse_done": True, "released_by_go": released, "at": time.monotonic()})
            self.close_connection = True
            return
        if path.endswith("/sse-go"):
            go.set()
            self.reply(200, {"released": True})
            return
        if "/status/" in path:
            code = int(path.rsplit("/", 1)[1])
            self.reply(code, {"status": code})
            return
        self.reply(200, {"ok": True, "body_len": n})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(CERT, KEY)
srv = Server(("127.0.0.1", 0), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(PORTFILE + ".tmp", PORTFILE)
srv.serve_forever()
