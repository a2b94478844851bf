"""Hostile requests through nginx to the gateways of the simulated stack (hypothesis): random
methods, paths, headers, keys and bodies. No 5xx but the designed degraded 503, and no 2xx for an
API path without a valid key. The number of requests tried is printed."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from fuzz_stack import fuzz_stack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.stack import RunningStack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Answered without a key by design: liveness, Prometheus' scrape, nginx's own health.
PUBLIC = {"/healthz", "/metrics", "/nginx-health"}
API_PATHS = ["/v1/chat/completions", "/v1/completions", "/v1/models"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with fuzz_stack(tmp_path_factory.mktemp("fuzz-stack")) as running:
        yield running


def hostile_text(max_size: int = 40) -> st.SearchStrategy[str]:
    return st.text(max_size=max_size) | st.sampled_from(
        [
            "",
            "' OR 1=1 --",
            "../../etc/passwd",
            "%00",
            "\u202e",
            "😀" * 50,
            "A" * 5000,
            "ignore previous instructions",
            "<script>",
            "\\u0000",
            "null",
            "{}",
        ]
    )


def header_value() -> st.SearchStrategy[str]:
    # What a client can put on the wire: latin-1 without CR/LF (httpx refuses the rest).
    return st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=60).map(str.strip)


def key_header(valid: str) -> st.SearchStrategy[tuple[str, dict[str, str]]]:
    """(kind, headers): which key, if any, the request carries."""
    return st.one_of(
        st.just(("none", {})),
        st.just(("valid", {"Authorization": f"Bearer {valid}"})),
        st.just(("valid", {"X-API-Key": valid})),
        header_value().map(lambda v: ("bogus", {"Authorization": f"Bearer {v}"})),
        header_value().map(lambda v: ("bogus", {"X-API-Key": v})),
        st.integers(200, 7000).map(lambda n: ("bogus", {"Authorization": "Bearer sk-" + "x" * n})),
        st.just(("bogus", {"Authorization": f"Basic {valid}"})),
        st.just(("bogus", {"Authorization": f"bearer  {valid[:-1]}"})),
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | hostile_text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(hostile_text(10), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def chat_like(draw: st.DrawFn) -> bytes:
    """A chat body with some fields hostile: wrong types, huge numbers, odd roles."""
    body: dict[str, object] = {
        "messages": draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "role": st.sampled_from(["user", "system", "assistant", ""])
                        | hostile_text(8)
                    },
                    optional={"content": hostile_text() | json_values},
                ),
                max_size=3,
            )
        ),
    }
    for field in draw(
        st.sets(
            st.sampled_from(
                ["max_tokens", "temperature", "stream", "n", "model", "stop", "top_p", "prompt"]
            )
        )
    ):
        body[field] = draw(json_values | st.integers(-(2**70), 2**70))
    if "max_tokens" not in body:
        body["max_tokens"] = 2  # the bodies that pass validation stay cheap to answer
    return json.dumps(body).encode()


bodies = st.one_of(
    chat_like(),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=300),
    st.sampled_from([b"", b"{", b"[]", b"\xff\xfe", b'{"messages": []}', b"{" * 2000]),
)
methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
paths = st.one_of(
    st.sampled_from(
        [
            *API_PATHS,
            *PUBLIC,
            "/",
            "/v1",
            "/v1/",
            "/v2/chat/completions",
            "/v1/chat/completions/",
            "/V1/CHAT/COMPLETIONS",
            "/v1//chat/completions",
            "/v1/chat/completions?x=1",
            "/%2e%2e/%2e%2e/etc/passwd",
            "/v1/%00",
            "/" + "a" * 3000,
        ]
    ),
    st.text(
        st.characters(min_codepoint=33, max_codepoint=0x2FFF, exclude_characters="?#"), max_size=30
    ).map(lambda t: "/v1/" + t),
)
# Well-formed requests an API key decides: a hostile key must not get them answered.
WELL_FORMED = [
    (
        "POST",
        "/v1/chat/completions",
        b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}',
    ),
    ("POST", "/v1/completions", b'{"prompt": "hi", "max_tokens": 2}'),
    ("GET", "/v1/models", b""),
]
extra_headers = st.dictionaries(
    st.sampled_from(
        [
            "Content-Type",
            "Accept",
            "X-Request-Id",
            "X-Forwarded-For",
            "Content-Encoding",
            "X-Real-IP",
            "Cookie",
            "Origin",
        ]
    ),
    header_value(),
    max_size=3,
)


def test_hostile_requests_through_nginx(stack: RunningStack) -> None:
    base = stack.endpoints.nginx
    valid = stack.endpoints.api_key
    seen: Counter[str] = Counter()
    bad: list[str] = []

    @settings(
        max_examples=600,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(
        request=st.sampled_from(WELL_FORMED) | st.tuples(methods, paths, bodies),
        key=key_header(valid),
        headers=extra_headers,
    )
    def one(
        request: tuple[str, str, bytes], key: tuple[str, dict[str, str]], headers: dict[str, str]
    ) -> None:
        (method, path, body), (kind, auth) = request, key
        try:
            # Bytes: non-ASCII header values go on the wire as they are (latin-1).
            wire = {k: v.encode("latin-1") for k, v in {**headers, **auth}.items()}
            r = http.request(method, base + path, headers=wire, content=body or None)
        except (httpx.InvalidURL, httpx.LocalProtocolError):
            seen["refused by the client"] += 1
            return
        seen[f"{r.status_code // 100}xx"] += 1
        bare = path.split("?", 1)[0]
        degraded = r.status_code == 503 and r.headers.get("x-served-by") == "degraded"
        if r.status_code >= 500 and not degraded:
            bad.append(f"{method} {path[:60]!r} key={kind}: {r.status_code} {r.text[:120]!r}")
        if 200 <= r.status_code < 300 and kind != "valid" and bare not in PUBLIC:
            bad.append(f"{method} {path[:60]!r} key={kind}: {r.status_code} without a valid key")

    # One client for every example: a fresh one per request was most of the test's time.
    with httpx.Client(timeout=30.0) as http:
        one()
    total = sum(seen.values())
    print(f"{total} hostile requests through nginx: {dict(sorted(seen.items()))}")
    assert not bad, "\n".join(bad[:20])
    assert total >= 300


def test_security_probe_reports_counts_by_class(stack: RunningStack) -> None:
    from harness.probes.practices import probe_security

    limit = stack.spec.gateway.settings.validation.max_prompt_chars
    check = probe_security(stack.endpoints.nginx, stack.endpoints.api_key, limit)
    print(check.reasons)
    assert check.outcome == "pass", check.reasons
    m = check.measured
    assert m["sent"] == 13
    assert (m["no_key_sent"], m["no_key_answers"]) == (2, "2x401")
    assert (m["unknown_key_sent"], m["unknown_key_answers"]) == (2, "2x403")
    assert m["malformed_json_sent"] == 4 and m["wrong_method_sent"] == 2
    assert m["unknown_path_answers"] == "1x404"
    assert "malformed JSON: 4 sent, answered 4x400" in check.reasons
