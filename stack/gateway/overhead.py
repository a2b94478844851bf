"""The gateway's own cost per request: wall time in the gateway minus time waiting on model servers.

`OverheadMiddleware` (outermost, pure ASGI) starts a clock when a request arrives and puts it in
`scope["state"]["overhead"]`; the request path marks the model-server calls with `waiting()`.
Every answer carries `X-Gateway-Overhead-Ms`: the gateway's own time up to the moment its headers
are sent (for a stream, up to the first event, so it is the gateway's share of TTFT), and the
same split as a standard `Server-Timing` header: `gw;dur=` that own time and, when a model server
was called, `upstream;dur=` the wait on it (connect, send, and the whole answer or, for a stream,
its first event), both from this one clock, so a client can split its time to first token. The
`llm_gateway_overhead_seconds` histogram gets the whole request's own time when it ends.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-gateway-overhead-ms"
SERVER_TIMING = b"server-timing"
STATE_KEY = "overhead"


class OverheadClock:
    __slots__ = ("started", "waited_s")

    def __init__(self, started: float | None = None) -> None:
        self.started = time.perf_counter() if started is None else started
        self.waited_s = 0.0

    def own_s(self, now: float | None = None) -> float:
        """Seconds spent in the gateway so far, not counting the marked waits."""
        end = time.perf_counter() if now is None else now
        return max(0.0, end - self.started - self.waited_s)

    def waiting(self) -> _Waiting:
        """Mark a wait on a model server (connect, request, answer or next stream event)."""
        return _Waiting(self)


class _Waiting:
    """`with clock.waiting():` as a plain class: a stream enters one per network read, where a
    generator-based context manager cost several times as much."""

    __slots__ = ("clock", "t")

    def __init__(self, clock: OverheadClock) -> None:
        self.clock = clock
        self.t = 0.0

    def __enter__(self) -> None:
        self.t = time.perf_counter()

    def __exit__(self, *_: object) -> None:
        self.clock.waited_s += time.perf_counter() - self.t


def clock_of(scope: Scope) -> OverheadClock:
    """The request's clock; a fresh one when the app runs without the middleware (tests)."""
    state = scope.setdefault("state", {})
    clock = state.get(STATE_KEY)
    if not isinstance(clock, OverheadClock):
        clock = state[STATE_KEY] = OverheadClock()
    return clock


class OverheadMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        clock = OverheadClock()
        scope.setdefault("state", {})[STATE_KEY] = clock

        async def send_with_overhead(message: Message) -> None:
            if message["type"] == "http.response.start":
                own = f"{clock.own_s() * 1000:.3f}"
                timing = f"gw;dur={own}"
                if clock.waited_s:
                    timing += f", upstream;dur={clock.waited_s * 1000:.3f}"
                message["headers"] = [
                    *message.get("headers", []),
                    (HEADER, own.encode()),
                    (SERVER_TIMING, timing.encode()),
                ]
            await send(message)

        await self.app(scope, receive, send_with_overhead)
