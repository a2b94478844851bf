"""API-key authentication: header forms, 401 vs 403, anonymous mode, keys from the environment."""

from __future__ import annotations

import pytest

from gateway.auth import authenticate, extract_key, key_identity
from gateway.config import api_keys
from gateway.errors import GatewayError
from harness.spec.gateway import AuthSettings, GatewayRuntimeConfig, GatewaySettings

KEYS = ("sk-one", "sk-two")


def auth(headers: dict[str, str], **kw: bool) -> object:
    opts = {"enabled": True, "allow_anonymous": False, **kw}
    return authenticate(headers, "127.0.0.9", KEYS, **opts)


def test_key_from_either_header() -> None:
    assert extract_key({"x-api-key": "sk-one"}) == "sk-one"
    assert extract_key({"authorization": "Bearer sk-two"}) == "sk-two"
    assert extract_key({"authorization": "bearer  sk-two "}) == "sk-two"
    assert extract_key({"authorization": "Basic abc"}) is None
    assert extract_key({}) is None


def test_missing_key_is_401_unknown_key_is_403() -> None:
    with pytest.raises(GatewayError) as e:
        auth({})
    assert e.value.status == 401
    with pytest.raises(GatewayError) as e:
        auth({"x-api-key": "sk-three"})
    assert e.value.status == 403
    assert "sk-three" not in e.value.message


def test_identity_hides_the_key() -> None:
    p = auth({"x-api-key": "sk-one"})
    assert p.identity == key_identity("sk-one")  # type: ignore[attr-defined]
    assert "sk-one" not in p.identity  # type: ignore[attr-defined]


def test_anonymous_is_identified_by_address_but_wrong_keys_still_fail() -> None:
    p = auth({}, allow_anonymous=True)
    assert p.identity == "addr:127.0.0.9" and p.anonymous  # type: ignore[attr-defined]
    with pytest.raises(GatewayError):
        auth({"x-api-key": "nope"}, allow_anonymous=True)


def test_keys_from_environment_are_added(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_API_KEYS", " sk-env1, ,sk-env2,sk-one")
    cfg = GatewayRuntimeConfig(
        replica="r",
        primary_urls=("http://127.0.0.1:1",),
        settings=GatewaySettings(auth=AuthSettings(api_keys=("sk-one",))),
    )
    assert api_keys(cfg) == ("sk-one", "sk-env1", "sk-env2")
