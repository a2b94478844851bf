"""Every HTTP client the harness opens, with one TLS context per process.

httpx builds a fresh TLS context for each client it is not given one (it loads the CA bundle:
about 18 ms of CPU), and the harness opens short-lived clients in readiness polls, probes and
per-look queries: with a context each, that was most of the harness's own CPU. The shared
context verifies exactly as httpx's default does.
"""

from __future__ import annotations

import ssl
from contextlib import AbstractContextManager
from functools import cache
from typing import Any

import httpx

from harness.errors import AnswerError


@cache
def tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def new_client(**kwargs: Any) -> httpx.Client:
    return httpx.Client(verify=tls_context(), **kwargs)


def new_async_client(**kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(verify=tls_context(), **kwargs)


def http_get(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(url, verify=tls_context(), **kwargs)


def http_post(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(url, verify=tls_context(), **kwargs)


def http_stream(method: str, url: str, **kwargs: Any) -> AbstractContextManager[httpx.Response]:
    return httpx.stream(method, url, verify=tls_context(), **kwargs)


def json_object(r: httpx.Response) -> dict[str, Any]:
    """The answer's body as a JSON object; AnswerError (evidence about the stack) otherwise."""
    try:
        body = r.json()
    except ValueError as exc:
        raise AnswerError(f"{_asked(r)}: the answer is not JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise AnswerError(f"{_asked(r)}: the answer is {type(body).__name__}, not a JSON object")
    return body


def _asked(r: httpx.Response) -> str:
    try:
        return f"{r.request.method} {r.request.url}"
    except RuntimeError:  # a response built without a request (tests)
        return "the answer"
