"""The body-size limit, enforced while the body arrives (a declared Content-Length or a
chunked upload), so an oversized request costs no more than the limit."""

from __future__ import annotations

import json


class BodySizeLimit:
    """ASGI middleware: a body over `max_bytes` gets 413 before any route sees it."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send, int(declared))
            return
        seen = 0
        refused = False

        async def limited_receive():
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    refused = True
                    raise BodyTooLarge
            return message

        answered = False

        async def guarded_send(message):
            # Once the body was refused, whatever the app makes of the interrupted read
            # (a framework's own 400) is replaced by the 413.
            nonlocal answered
            if not refused:
                await send(message)
            elif not answered:
                answered = True
                await self._refuse(send, seen)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            pass
        if refused and not answered:
            answered = True
            await self._refuse(send, seen)

    async def _refuse(self, send, size: int) -> None:
        body = json.dumps(
            {
                "error": {
                    "status": 413,
                    "message": f"the body has more than {self.max_bytes} bytes (at least {size})",
                }
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    pass
