"""API-key authentication (PRACTICES.md section 6).

The key comes from `X-API-Key` or `Authorization: Bearer`. Every configured key is compared with
hmac.compare_digest, and all of them every time, so timing says nothing about which key is close.
Keys are never logged; the rate limiter sees only a hash of the key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.errors import GatewayError


@dataclass(frozen=True)
class Principal:
    """Who is asking, as the rate limiter and the logs may see it (no secret inside)."""

    identity: str  # "key:<sha256 prefix>" or "addr:<client address>"
    anonymous: bool


def extract_key(headers: Mapping[str, str]) -> str | None:
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def key_matches(candidate: str, keys: tuple[str, ...]) -> bool:
    given = candidate.encode()
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given, key.encode())
    return matched


def key_identity(key: str) -> str:
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]


def authenticate(
    headers: Mapping[str, str],
    client_addr: str,
    keys: tuple[str, ...],
    *,
    enabled: bool,
    allow_anonymous: bool,
) -> Principal:
    """Return the principal or raise 401 (no key) / 403 (unknown key)."""
    if not enabled:
        return Principal("addr:" + client_addr, anonymous=True)
    key = extract_key(headers)
    if key is None:
        if allow_anonymous:
            return Principal("addr:" + client_addr, anonymous=True)
        raise GatewayError(
            401,
            "missing API key: send it in the X-API-Key header or as Authorization: Bearer <key>",
            type_="authentication_error",
            code="missing_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not key_matches(key, keys):
        raise GatewayError(403, "invalid API key", type_="permission_error", code="invalid_api_key")
    return Principal(key_identity(key), anonymous=False)
