"""A tiny threaded HTTP server on 127.0.0.1 for platform fakes and test sources.

A fake registers handlers per (method, path regex); each handler gets a `Request` and returns a
`Reply`. Every request is recorded so tests can assert on what was really sent.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    match: re.Match[str] | None = None

    def header(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return default

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None

    def form(self) -> dict[str, str]:
        """Form fields, falling back to the query string (Graph/Telegram accept both) and JSON."""
        fields = {k: v[-1] for k, v in self.query.items()}
        content_type = (self.header("content-type") or "").lower()
        if "application/json" in content_type and self.body:
            data = self.json()
            if isinstance(data, dict):
                fields.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()})
        elif "multipart/form-data" in content_type:
            fields.update(_multipart(self.body, content_type))
        elif self.body:
            fields.update({k: v[-1] for k, v in parse_qs(self.body.decode("utf-8"), keep_blank_values=True).items()})
        return fields


@dataclass
class Reply:
    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering (the request may have been acted on)

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, self.headers.get("Content-Type", "application/octet-stream")
        if isinstance(self.body, str):
            return self.body.encode("utf-8"), self.headers.get("Content-Type", "text/plain; charset=utf-8")
        return json.dumps(self.body).encode("utf-8"), "application/json; charset=utf-8"


def _multipart(body: bytes, content_type: str) -> dict[str, str]:
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        raw = part.get_payload(decode=True)
        payload = raw if isinstance(raw, bytes) else b""
        if part.get_filename():
            fields[str(name)] = f"<file {part.get_filename()} {len(payload)} bytes>"
        else:
            fields[str(name)] = payload.decode("utf-8", "replace")
    return fields


Handler = Callable[[Request], Reply]


class FakeServer:
    """Start with `with FakeServer() as server:`; `server.url` is its base URL. `host` is the
    loopback address it listens on (127.0.0.2 plays an internal server that must not be reached)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        # TCP_NODELAY on the answers (opt-in, for benchmarks): a reply's headers and body go out as
        # two writes, and without it the body can wait for the client's delayed ACK (~40 ms on
        # Linux), as no real platform's server makes its clients wait.
        self.nodelay = False
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append((method.upper(), re.compile(f"^{pattern}$"), handler))
            return handler

        return register

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        self.route(method, pattern)(handler)

    def handle(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
        for method, pattern, handler in self.routes:
            match = pattern.match(request.path)
            if match and method in (request.method, "*"):
                request.match = match
                return handler(request)
        return Reply(404, {"error": "not found", "path": request.path})

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeServer:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = self.nodelay

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers=dict(self.headers.items()),
                    body=body,
                )
                try:
                    reply = fake.handle(request)
                except Exception as exc:  # a broken fake must be loud in the test output
                    reply = Reply(500, {"fake_error": repr(exc)})
                if reply.drop:
                    self.close_connection = True
                    return
                payload, content_type = reply.encoded()
                self.send_response(reply.status)
                headers = {"Content-Type": content_type, **reply.headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer((self.host, 0), _Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
