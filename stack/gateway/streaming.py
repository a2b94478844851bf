"""The gateway's SSE response: streams an async iterator of bytes, stops when the client leaves,
and runs `on_close` however it ends (completed, client gone, cancelled, never started), so the
active-requests gauge, the metrics and the log line are always settled.

Starlette's StreamingResponse notices a client leaving through an anyio task group per response
(uvicorn speaks ASGI 2.3, where a send after a disconnect is dropped, not raised); at 64
concurrent streams through nginx that machinery cost a quarter of a millisecond of CPU per
request, about a tenth of the gateway's (README, "Its own cost"). Here one plain asyncio task per
response waits on `receive` and cancels the stream when the client is gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

# The server's own `send`, kept in the scope by `GatewayApp`: a stream's events go to it
# directly. The middlewares (Starlette's error handling, the request id, the overhead header)
# act on the response's start alone; each of their four wrappers is a coroutine call per event,
# and a stream has one event per token.
RAW_SEND = "gateway.raw_send"


class GatewayApp(Starlette):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[RAW_SEND] = send
        await super().__call__(scope, receive, send)


class SseResponse(Response):
    media_type = "text/event-stream"

    def __init__(
        self,
        content: AsyncIterator[bytes],
        on_close: Callable[[], Awaitable[None]],
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.body_iterator = content
        self.status_code = 200
        self.background = None
        self.init_headers(headers)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stream = asyncio.current_task()
        assert stream is not None
        gone = False

        async def watch() -> None:
            nonlocal gone
            while (await receive())["type"] != "http.disconnect":
                pass
            gone = True
            stream.cancel()

        watcher = asyncio.get_running_loop().create_task(watch())
        send_body: Send = scope.get(RAW_SEND, send)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async for chunk in self.body_iterator:
                await send_body({"type": "http.response.body", "body": chunk, "more_body": True})
            await send_body({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not gone:
                raise  # the server's own cancellation (shutdown): not ours to swallow
            stream.uncancel()  # the client left: an ordinary end of this response
        finally:
            # Before any await: the last send completes the response, which wakes `receive`
            # with a disconnect; cancelled first, the watcher never acts on it.
            watcher.cancel()
            await asyncio.shield(self._on_close())
