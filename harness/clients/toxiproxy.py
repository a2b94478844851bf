"""Toxiproxy control client with a bounded timeout on every call.

toxiproxy-python has no request timeouts and keeps its server address in class-level state;
under load its API can stall, so the harness speaks the HTTP API itself.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx

from harness.clients.http import new_client
from harness.errors import StackError

Stream = Literal["upstream", "downstream"]


class ToxiproxyError(StackError):
    pass


class ToxiproxyClient:
    def __init__(self, base_url: str, timeout_s: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = new_client(base_url=self.base_url, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ToxiproxyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, json: Any = None) -> Any:
        try:
            r = self._http.request(method, path, json=json)
        except httpx.HTTPError as exc:
            raise ToxiproxyError(f"toxiproxy {method} {path}: {exc}") from exc
        if r.status_code >= 400:
            raise ToxiproxyError(f"toxiproxy {method} {path}: {r.status_code} {r.text.strip()}")
        return r.json() if r.content else None

    def version(self) -> str:
        try:
            return self._http.get("/version").text.strip()
        except httpx.HTTPError as exc:
            raise ToxiproxyError(f"toxiproxy GET /version: {exc}") from exc

    def proxies(self) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = self._call("GET", "/proxies")
        return result

    def create_proxy(self, name: str, listen: str, upstream: str) -> None:
        self._call(
            "POST",
            "/proxies",
            {"name": name, "listen": listen, "upstream": upstream, "enabled": True},
        )

    def proxy(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/proxies/{name}")
        return result

    def delete_proxy(self, name: str) -> None:
        self._call("DELETE", f"/proxies/{name}")

    def set_enabled(self, name: str, enabled: bool) -> None:
        """Disabled: the proxy refuses connections and drops open ones (the service is 'down')."""
        self._call("POST", f"/proxies/{name}", {"enabled": enabled})

    def add_toxic(
        self,
        proxy: str,
        toxic_type: str,
        attributes: dict[str, float | int],
        *,
        name: str | None = None,
        stream: Stream = "downstream",
        toxicity: float = 1.0,
    ) -> str:
        toxic_name = name or f"{toxic_type}_{stream}"
        self._call(
            "POST",
            f"/proxies/{proxy}/toxics",
            {
                "name": toxic_name,
                "type": toxic_type,
                "stream": stream,
                "toxicity": toxicity,
                "attributes": attributes,
            },
        )
        return toxic_name

    def remove_toxic(self, proxy: str, toxic_name: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/toxics/{toxic_name}")

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self._call("POST", "/reset")
