"""What the API's pure ASGI middlewares share: they handle HTTP requests only (the lifespan,
and any other scope, go to the app untouched), and some watch the response start."""

from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HttpMiddleware:
    """A pure ASGI middleware: HTTP requests go to `handle`, every other scope to the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class ResponseStart:
    """`send` as the app gets it: notes whether the response started and its status (500
    until it does), and adds `headers` to it."""

    def __init__(self, send: Send, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        self._send = send
        self._headers = list(headers)
        self.started = False
        self.status = 500

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            if self._headers:
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *self._headers]
        await self._send(message)
