"""A real HTTP server for the `http` source's tests: stdlib http.server on 127.0.0.1, port 0,
in a thread, answering per path with scripted replies and recording every request."""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"[]"
    content_type: str = "application/json"
    send_length: bool = True  # False: no Content-Length, the body ends when the connection does
    hang: bool = False  # True: answer nothing until the server stops
    wait_for: threading.Event | None = None  # answer only once this is set (or it stops)
    location: str | None = None  # a redirect's target


def json_reply(document: Any, status: int = 200) -> Reply:
    return Reply(status=status, body=json.dumps(document).encode())


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    query: str
    headers: dict[str, str]


@dataclass
class LocalHttpServer:
    """Each path answers its replies in order; the last one repeats. Unknown paths: 404."""

    port: int = 0
    routes: dict[str, list[Reply]] = field(default_factory=dict)
    received: list[ReceivedRequest] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def route(self, path: str, *replies: Reply) -> None:
        with self.lock:
            self.routes[path] = list(replies)

    def requests_to(self, path: str) -> list[ReceivedRequest]:
        with self.lock:
            return [request for request in self.received if request.path == path]

    def _next_reply(self, request: ReceivedRequest) -> Reply:
        with self.lock:
            self.received.append(request)
            replies = self.routes.get(request.path)
            if not replies:
                return Reply(status=404, body=b'{"error": "no such path"}')
            return replies.pop(0) if len(replies) > 1 else replies[0]


@contextmanager
def serve() -> Iterator[LocalHttpServer]:
    state = LocalHttpServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            reply = state._next_reply(
                ReceivedRequest(path=parts.path, query=parts.query, headers=dict(self.headers))
            )
            if reply.hang:
                state.stopping.wait(timeout=120)
                return
            if reply.wait_for is not None:
                while not reply.wait_for.wait(0.05) and not state.stopping.is_set():
                    pass
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                if reply.location is not None:
                    self.send_header("Location", reply.location)
                if reply.send_length:
                    self.send_header("Content-Length", str(len(reply.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(reply.body)
            except OSError:  # the client gave up first (a size limit or a timeout)
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
