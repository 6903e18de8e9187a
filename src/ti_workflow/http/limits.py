"""Refuse oversized and non-JSON bodies before any parsing (a pure ASGI middleware).

A body over the limit is refused with 413 whether it announces its length or comes
chunked; a write whose body is not JSON gets 415. Both answer problem+json. Paths in
``raw`` (file uploads) pass untouched: their route reads the body with its own bound.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from ti_workflow.http.problems import MEDIA_TYPE, problem

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Refused = Callable[[Scope, int, str], Awaitable[None]]

DEFAULT_LIMIT = 256 * 1024
WRITES = {"POST", "PUT", "PATCH"}


class BodyLimit:
    def __init__(
        self,
        app: ASGIApp,
        limit: int = DEFAULT_LIMIT,
        on_refusal: Refused | None = None,
        raw: frozenset[str] = frozenset(),
    ):
        self.app = app
        self.limit = limit
        self.on_refusal = on_refusal
        self.raw = raw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in WRITES
            or scope["path"] in self.raw
            or not scope["path"].startswith("/v1")  # the console reads its own forms
        ):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await self._refuse(scope, send, "body-too-large", self._too_large())
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.limit:
                await self._refuse(scope, send, "body-too-large", self._too_large())
                return
            if not message.get("more_body", False):
                break
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        if size and not (kind == "application/json" or kind.endswith("+json")):
            detail = (
                f"the body must be JSON (Content-Type: application/json), got {kind or 'none'!r}"
            )
            await self._refuse(scope, send, "unsupported-media-type", detail)
            return

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)

    def _too_large(self) -> str:
        return (
            f"the request body is over the limit of {self.limit} bytes ({self.limit // 1024} KiB)"
        )

    async def _refuse(self, scope: Scope, send: Send, slug: str, detail: str) -> None:
        body = problem(slug, detail, scope["path"])
        payload = json.dumps(body, ensure_ascii=False).encode()
        await send(
            {
                "type": "http.response.start",
                "status": body["status"],
                "headers": [
                    (b"content-type", MEDIA_TYPE.encode()),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
        if self.on_refusal is not None:
            await self.on_refusal(scope, body["status"], slug)
