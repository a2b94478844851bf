"""Starlette app factory: `uvicorn gateway.app:create_app --factory` with GATEWAY_CONFIG set.

Routes: POST /v1/chat/completions, POST /v1/completions (OpenAI-compatible, streaming or not),
GET /v1/models (authenticated), GET /healthz and GET /metrics (open, for probes and Prometheus).
Plain Starlette, not FastAPI: the gateway reads its own bodies, so FastAPI's validation and
dependency layers were only cost (a tenth of a second of imports per replica, and work on every
request before its first byte).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CONTENT_TYPE_LATEST, disable_created_metrics, generate_latest
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.auth import authenticate
from gateway.config import CONFIG_ENV, load_runtime_config
from gateway.errors import GatewayError, error_body, error_response
from gateway.log_shipping import ship_logs, unship_logs
from gateway.overhead import OverheadMiddleware
from gateway.pipeline import Gateway, client_address
from gateway.request_id import RequestIdMiddleware
from gateway.streaming import GatewayApp
from harness.spec.gateway import GatewayRuntimeConfig


def create_app(config: GatewayRuntimeConfig | None = None) -> GatewayApp:
    # The *_created series double the scrape size and nothing in the stack reads them.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    config = config or load_runtime_config()
    gateway = Gateway(config)
    started = time.time()

    @asynccontextmanager
    async def lifespan(_: GatewayApp) -> AsyncIterator[None]:
        shipper = ship_logs(config.logs_url, config.replica) if config.logs_url else None
        # SIGHUP re-reads the config file's replica addresses (a rolling update moves them).
        path = os.environ.get(CONFIG_ENV)
        if path:
            asyncio.get_running_loop().add_signal_handler(
                signal.SIGHUP, lambda: gateway.reload_pools(load_runtime_config(path))
            )
        try:
            yield
        finally:
            await gateway.aclose()
            if shipper is not None:
                unship_logs(shipper)

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        kind = "not_found" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse(
            error_body(str(exc.detail), kind), status_code=exc.status_code, headers=exc.headers
        )

    async def chat_completions(request: Request) -> Response:
        return await gateway.handle(request, "chat")

    async def completions(request: Request) -> Response:
        return await gateway.handle(request, "completion")

    async def models(request: Request) -> Response:
        auth = gateway.settings.auth
        try:
            authenticate(
                request.headers,
                client_address(request),
                gateway.keys,
                enabled=auth.enabled,
                allow_anonymous=auth.allow_anonymous,
            )
        except GatewayError as e:
            return error_response(e)
        data = [
            {"id": p.model, "object": "model", "created": int(started), "owned_by": p.name}
            for p in gateway.pools.values()
        ]
        return JSONResponse({"object": "list", "data": data})

    async def healthz(_: Request) -> Response:
        # Liveness: answers from memory, never waits on Redis or the model servers.
        return JSONResponse(
            {
                "status": "ok",
                "replica": gateway.config.replica,
                "uptime_s": round(time.time() - started, 3),
                "active_requests": gateway.active,
                "redis": gateway.store.status,
                "pools": {
                    name: {
                        "model": p.model,
                        "urls": list(p.urls),
                        "in_flight": dict(p.in_flight),
                        "breaker": p.breaker.state,
                    }
                    for name, p in gateway.pools.items()
                },
            }
        )

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(gateway.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app = GatewayApp(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/completions", completions, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        # The first is outermost: its clock starts before any other gateway code runs.
        middleware=[Middleware(OverheadMiddleware), Middleware(RequestIdMiddleware)],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    return app
