"""Compressed answers to reads: a GET answered with more than a kilobyte goes out
gzip-compressed to a client that accepts it (the dashboard's pages, plot data, a 1 MiB
trial log). Writes are left alone: a worker's start, report and finish are small, and
they are the service's hottest path."""

from __future__ import annotations

from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["ReadCompression"]


class ReadCompression:
    """Starlette's gzip middleware, for GET requests only."""

    def __init__(self, app: ASGIApp, *, minimum_size: int = 1024, level: int = 6) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=minimum_size, compresslevel=level)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") == "GET":
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)
