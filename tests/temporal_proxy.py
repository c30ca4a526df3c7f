"""A TCP proxy in front of Temporal that can go silent: while silent it still delivers what
the client sends, but holds back every answer, as a server does that acted on a request and
then stopped answering (the timeout after the server created the workflow); while down it
drops every connection, delivering nothing, as a server that is not there."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field


@dataclass
class SilenceableProxy:
    target: tuple[str, int]
    silent: threading.Event = field(default_factory=threading.Event)
    down: threading.Event = field(default_factory=threading.Event)  # drops every connection
    port: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _pump(self, source: socket.socket, sink: socket.socket, answers: bool) -> None:
        with closing(source), closing(sink):
            try:
                while (chunk := source.recv(65536)) and not self.down.is_set():
                    while answers and self.silent.is_set():
                        time.sleep(0.05)
                    sink.sendall(chunk)
            except OSError:
                return

    def _serve(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self.down.is_set():
                client.close()
                continue
            server = socket.create_connection(self.target)
            for source, sink, answers in ((client, server, False), (server, client, True)):
                threading.Thread(
                    target=self._pump, args=(source, sink, answers), daemon=True
                ).start()


@contextmanager
def silenceable_proxy(target: str) -> Iterator[SilenceableProxy]:
    host, port = target.rsplit(":", 1)
    proxy = SilenceableProxy(target=(host, int(port)))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    proxy.port = listener.getsockname()[1]
    threading.Thread(target=proxy._serve, args=(listener,), daemon=True).start()
    try:
        yield proxy
    finally:
        proxy.silent.clear()
        listener.close()
