"""Cache and rate limit in a real Redis shared by two replicas; Redis down or hung (Toxiproxy)."""

from __future__ import annotations

import itertools
import json
import socket
import time
import uuid
from collections.abc import Callable

import pytest
import redis
from gateway_fixtures import *  # noqa: F403
from gateway_fixtures import API_KEY, GatewayProcess, Toxiproxy

pytestmark = [pytest.mark.integration]

CHAT = "/v1/chat/completions"
RL_KEY = "sk-rate-limited"
_names = itertools.count()


def chat(text: str, **extra: object) -> dict[str, object]:
    body = {"messages": [{"role": "user", "content": text}], "max_tokens": 8, "temperature": 0}
    return {**body, **extra}


def sse_text(raw: str) -> str:
    out = ""
    for block in raw.strip().split("\n\n"):
        data = block.removeprefix("data: ")
        if data != "[DONE]":
            for choice in json.loads(data).get("choices", []):
                out += choice.get("delta", {}).get("content") or ""
    return out


@pytest.fixture(scope="module")
def replicas(
    gateway_factory: Callable[..., GatewayProcess], sim_server: str, redis_server: str
) -> tuple[GatewayProcess, GatewayProcess]:
    settings = {"cache": {"ttl_s": 120}, "rate_limit": {"requests_per_minute": 5}}
    settings["auth"] = {"api_keys": [API_KEY, RL_KEY]}
    url = f"redis://{redis_server}/0"
    return (
        gateway_factory(primary_urls=(sim_server,), redis_url=url, settings=settings),
        gateway_factory(primary_urls=(sim_server,), redis_url=url, settings=settings),
    )


@pytest.fixture(scope="module")
def cache_replicas(
    gateway_factory: Callable[..., GatewayProcess], sim_server: str, redis_server: str
) -> tuple[GatewayProcess, GatewayProcess]:
    settings = {"cache": {"ttl_s": 120}, "rate_limit": {"requests_per_minute": 1000}}
    url = f"redis://{redis_server}/1"
    return (
        gateway_factory(primary_urls=(sim_server,), redis_url=url, settings=settings),
        gateway_factory(primary_urls=(sim_server,), redis_url=url, settings=settings),
    )


def test_deterministic_answer_is_cached_across_replicas(
    cache_replicas: tuple[GatewayProcess, GatewayProcess], redis_server: str
) -> None:
    a, b = cache_replicas
    body = chat(f"cache me {uuid.uuid4()}")
    with a.client() as ca, b.client() as cb:
        first = ca.post(CHAT, json=body)
        second = cb.post(CHAT, json=body)
    assert (first.headers["x-cache"], first.headers["x-served-by"]) == ("miss", "primary")
    assert (second.headers["x-cache"], second.headers["x-served-by"]) == ("hit", "cache")
    content = first.json()["choices"][0]["message"]["content"]
    assert second.json()["choices"][0]["message"]["content"] == content
    assert second.json()["usage"]["cost_usd"] == 0.0
    assert b.metric("llm_cache_hits_total") == 1
    host, port = redis_server.split(":")
    keys = redis.Redis(host=host, port=int(port), db=1).keys("llmcache:v1:*")
    assert keys
    ttl = redis.Redis(host=host, port=int(port), db=1).ttl(keys[0])
    assert 0 < ttl <= 120


def test_stream_and_plain_requests_share_entries(
    cache_replicas: tuple[GatewayProcess, GatewayProcess],
) -> None:
    a, _ = cache_replicas
    body = chat(f"stream me {uuid.uuid4()}")
    with a.client() as c:
        streamed = c.post(CHAT, json={**body, "stream": True})
        plain = c.post(CHAT, json=body)
        replayed = c.post(CHAT, json={**body, "stream": True})
    assert streamed.headers["x-cache"] == "miss"
    assert plain.headers["x-cache"] == "hit"
    assert plain.json()["choices"][0]["message"]["content"] == sse_text(streamed.text)
    assert replayed.headers["x-cache"] == "hit"
    assert replayed.headers["content-type"].startswith("text/event-stream")
    assert sse_text(replayed.text) == sse_text(streamed.text)
    assert replayed.text.rstrip().endswith("data: [DONE]")


def test_sampled_requests_bypass_the_cache(
    cache_replicas: tuple[GatewayProcess, GatewayProcess],
) -> None:
    a, _ = cache_replicas
    with a.client() as c:
        r = c.post(CHAT, json=chat("sampled", temperature=0.7))
        r2 = c.post(CHAT, json={"messages": [{"role": "user", "content": "no temperature"}]})
    assert r.headers["x-cache"] == "bypass" and r2.headers["x-cache"] == "bypass"
    assert a.metric("llm_cache_bypass_total", reason="nondeterministic") == 2


def test_rate_limit_is_shared_by_replicas(
    replicas: tuple[GatewayProcess, GatewayProcess],
) -> None:
    a, b = replicas
    # Keep the burst inside one minute window, so the sliding count is exactly what was sent.
    if time.time() % 60 > 50:
        time.sleep(61 - time.time() % 60)
    statuses = []
    with (
        a.client(headers={"X-API-Key": RL_KEY}) as ca,
        b.client(headers={"X-API-Key": RL_KEY}) as cb,
    ):
        for i in range(5):
            statuses.append((ca if i % 2 else cb).post(CHAT, json=chat("hi")).status_code)
        limited = ca.post(CHAT, json=chat("hi"))
    assert statuses == [200] * 5
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert a.metric("llm_rate_limited_total") == 1
    assert a.metric("llm_requests_total", status="rate_limited", model="unknown") == 1
    with a.client() as other_key:  # limits are per key
        assert other_key.post(CHAT, json=chat("hi")).status_code == 200


@pytest.fixture
def redis_proxy(toxiproxy: Toxiproxy, redis_server: str) -> tuple[str, str]:
    name = f"redis-{next(_names)}"
    return name, toxiproxy.create(name, redis_server)


def test_redis_down_serves_uncached_and_counts(
    gateway_factory: Callable[..., GatewayProcess],
    sim_server: str,
    toxiproxy: Toxiproxy,
    redis_proxy: tuple[str, str],
) -> None:
    name, listen = redis_proxy
    gw = gateway_factory(primary_urls=(sim_server,), redis_url=f"redis://{listen}/2")
    body = chat(f"while redis is down {uuid.uuid4()}")
    with gw.client(timeout=15) as c:
        assert c.post(CHAT, json=body).headers["x-cache"] == "miss"
        with toxiproxy.down(name):
            r = c.post(CHAT, json=body)
            assert r.status_code == 200
            assert r.headers["x-served-by"] == "primary"
            assert r.headers["x-cache"] == "miss"
        assert (gw.metric("llm_cache_errors_total", operation="get") or 0) >= 1
        assert (gw.metric("llm_rate_limit_errors_total") or 0) >= 1
        # Back up: after the short cooldown the cache answers again.
        deadline = time.monotonic() + 30
        seen = ""
        while seen != "hit" and time.monotonic() < deadline:
            time.sleep(0.5)
            seen = c.post(CHAT, json=body).headers["x-cache"]
    assert seen == "hit"


def test_hanging_redis_does_not_hang_requests(
    gateway_factory: Callable[..., GatewayProcess],
    sim_server: str,
    toxiproxy: Toxiproxy,
    redis_proxy: tuple[str, str],
) -> None:
    name, listen = redis_proxy
    gw = gateway_factory(primary_urls=(sim_server,), redis_url=f"redis://{listen}/3")
    # A timeout toxic with timeout 0 swallows everything until removed: Redis "hangs". It is not
    # removed (see test_gateway_resilience): the proxy belongs to this test alone.
    toxiproxy.add_toxic(name, "hang", "timeout", timeout=0)
    with gw.client(timeout=15) as c:  # the client timeout is the hang detector
        statuses = [c.post(CHAT, json=chat(f"hang {i}")).status_code for i in range(3)]
    assert statuses == [200, 200, 200]
    assert (gw.metric("llm_rate_limit_errors_total") or 0) >= 1


def monitored(redis_server: str, act: Callable[[], object]) -> list[str]:
    """The commands Redis ran while `act` ran, as its MONITOR feed shows them: one line each,
    a script's own calls marked `[db lua]`."""
    host, port = redis_server.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"MONITOR\r\n")
        feed = sock.makefile("rb")
        assert feed.readline().strip() == b"+OK"
        act()
        sock.sendall(b"PING\r\n")  # its echo in the feed marks the end
        lines = []
        for raw in iter(feed.readline, b""):
            line = raw.decode().strip()
            if '"PING"' in line or line == "+PONG":
                break
            lines.append(line)
    return lines


def test_an_admitted_request_reads_the_cache_in_the_rate_limits_round_trip(
    cache_replicas: tuple[GatewayProcess, GatewayProcess], redis_server: str
) -> None:
    a, _ = cache_replicas
    body = chat(f"one round trip {uuid.uuid4()}")
    with a.client() as c:
        missed = monitored(redis_server, lambda: c.post(CHAT, json=body))
        hit = monitored(redis_server, lambda: c.post(CHAT, json=body))

    def sent(lines: list[str]) -> list[str]:  # what the gateway itself sent, lowercased
        return [ln.split('"')[1].lower() for ln in lines if " lua]" not in ln]

    # The miss: the script (limit, and the entry read), then the answer stored.
    assert sent(missed) == ["evalsha", "set"], missed
    # The hit: the script alone; inside it the limit's reads and count, and the entry's read.
    assert sent(hit) == ["evalsha"], hit
    inside = [ln.split('"')[1].lower() for ln in hit if " lua]" in ln]
    assert inside.count("get") == 3 and "incr" in inside, hit
