"""Request checks enforced before any route runs, as pure ASGI middlewares.

* :class:`BodySizeLimit`: the body size (413 beyond it). A declared ``Content-Length``
  over the limit is refused at once; a chunked body is counted as it streams and refused
  as soon as it passes the limit, so a hostile client cannot make the server buffer more
  than ``max_bytes``.
* :class:`NulGuard`: a NUL character in the URL. PostgreSQL refuses NUL in text (a
  driver error, a 500, where SQLite simply finds nothing), so it is answered here, the
  same on every database: 404 in the path (no study, trial or page has such a name),
  422 naming the parameter in the query string.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

__all__ = ["BodySizeLimit", "NulGuard"]

Scope = dict[str, Any]


async def _answer(send: Any, status: int, content: dict[str, Any]) -> None:
    body = json.dumps(content).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class NulGuard:
    """Answer requests whose path or query string holds a NUL character."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope.get("path", ""):
            detail = "not found: the path contains a NUL character"
            await _answer(send, 404, {"detail": detail})
            return
        query = scope.get("query_string") or b""
        if b"%00" in query or b"\x00" in query:
            for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
                if "\x00" in key or "\x00" in value:
                    field = key.replace("\x00", "") or "query"
                    item = {
                        "loc": ["query", field],
                        "field": field,
                        "msg": "must not contain NUL characters",
                        "type": "value_error",
                    }
                    await _answer(send, 422, {"detail": [item]})
                    return
        await self.app(scope, receive, send)


class BodySizeLimit:
    """Answer 413 to request bodies larger than ``max_bytes``."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = False  # the server answers a malformed header itself
            if too_big:
                await self._refuse(send)
                return
        seen = 0
        started = refused = False

        async def counted_receive() -> dict[str, Any]:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Answer now, then tell the app the client is gone: whatever the
                    # app makes of a cut body (a 400) is dropped by tracked_send.
                    refused = True
                    if not started:
                        await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message: dict[str, Any]) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except Exception:
            if not refused:  # only the app's reaction to the cut body is ours to swallow
                raise

    async def _refuse(self, send: Any) -> None:
        body = json.dumps(
            {
                "detail": f"request body too large: at most {self.max_bytes} bytes",
                "field": "body",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
