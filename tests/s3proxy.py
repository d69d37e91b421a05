"""A misbehaving network in front of the loopback S3 server: an HTTP proxy on 127.0.0.1.

Tests point ``s3_endpoint_url`` at the proxy. A ``rule(method, path, n)`` decides per
request: ``None`` forwards it, an int answers with that HTTP status (an S3 error body),
``"hold"`` keeps the request waiting until ``release()`` (how a test freezes a publish
mid-way and kills it). Nothing in the code under test is patched.
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import urlparse

ERROR_CODES = {500: "InternalError", 503: "SlowDown"}
Rule = Callable[[str, str, int], "int | str | None"]


class S3Proxy:
    def __init__(self, upstream: str, rule: Rule):
        self.upstream = urlparse(upstream)
        self.rule = rule
        self.requests: list[tuple[str, str, int | str | None]] = []
        self.held = threading.Event()  # set when the first request is held
        self._release = threading.Event()
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with proxy._lock:
                    action = proxy.rule(self.command, self.path, len(proxy.requests))
                    proxy.requests.append((self.command, self.path, action))
                if action == "hold":
                    proxy.held.set()
                    proxy._release.wait(300)
                    self.close_connection = True
                    return
                if isinstance(action, int):
                    payload = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{ERROR_CODES.get(action, 'Error')}"
                               f"</Code><Message>injected by the test proxy</Message></Error>").encode()
                    self.send_response(action)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length", "server",
                                         "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "S3Proxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()

    def release(self) -> None:
        self._release.set()

    def injected(self) -> int:
        return sum(1 for _, _, action in self.requests if isinstance(action, int))
