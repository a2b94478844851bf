"""The names a gateway uses on the wire: how the API key is sent, and the response headers that
say who served an answer, whether the cache did, and the request's id.

The reference gateway's names by default (README, "The gateway contract"); an external stack's
spec may name others (`external.auth_header`, `external.auth_scheme`, `external.gateway`). One
stack is gated per harness process, so the active names are process-wide: the pipeline sets them
for an external stack, and the load's workers receive them in their configuration.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from pydantic import BaseModel, ConfigDict


class Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"  # "" sends the bare key
    served_by: str = "X-Served-By"
    cache: str = "X-Cache"
    request_id: str = "X-Request-Id"

    def auth(self, api_key: str | None) -> dict[str, str]:
        if not api_key:
            return {}
        return {self.auth_header: f"{self.auth_scheme} {api_key}" if self.auth_scheme else api_key}


_current = Wire()


def current() -> Wire:
    return _current


def set_current(wire: Wire) -> None:
    global _current
    _current = wire


@contextlib.contextmanager
def using(wire: Wire) -> Iterator[Wire]:
    before = current()
    set_current(wire)
    try:
        yield wire
    finally:
        set_current(before)
