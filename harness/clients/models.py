"""Where load goes: a URL, its API key and model, and (when known) the Prometheus watching it;
the model and its context length as the target's servers report them (model discovery)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from harness import wire
from harness.clients.http import http_get
from harness.errors import ConfigError, ConfigProblem


@dataclass(frozen=True)
class Target:
    url: str  # base URL; requests go to {url}/v1/...
    api_key: str = ""
    model: str | None = None
    prometheus: str | None = None
    source: str = "--target"  # how it was chosen, for the report
    # The model server whose /tokenize sizes prompts in tokens (workload.tokenizer); None: `url`.
    tokenizer_url: str | None = None
    # Credentials an external stack's Prometheus asks for; never written to a report.
    prometheus_headers: dict[str, str] = field(default_factory=dict, repr=False)

    def redacted(self) -> dict[str, object]:
        key = self.api_key
        shown = (key[:6] + "...") if len(key) > 8 else ("***" if key else "")
        return {
            "url": self.url,
            "api_key": shown,
            "model": self.model,
            "prometheus": self.prometheus,
            "source": self.source,
            "tokenizer_url": self.tokenizer_url,
        }


def check_url(url: str, option: str) -> str:
    u = urlsplit(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ConfigError(option, [ConfigProblem(option, f"expected an http(s) URL, got {url!r}")])
    return url.rstrip("/").removesuffix("/v1")


def discover_model(target: Target, timeout_s: float = 5.0) -> str:
    """The first model the target lists at /v1/models; ConfigError with a hint when none."""
    headers = wire.current().auth(target.api_key)
    try:
        r = http_get(f"{target.url}/v1/models", headers=headers, timeout=timeout_s)
        r.raise_for_status()
        data = r.json().get("data") or []
        if data and isinstance(data[0], dict) and data[0].get("id"):
            return str(data[0]["id"])
        why = "it lists no models"
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        why = f"GET {target.url}/v1/models failed: {type(exc).__name__}: {exc}"
    raise ConfigError(
        "--model", [ConfigProblem("--model", f"no model given and {why}; pass --model NAME")]
    )


def context_of_models(body: object, model: str) -> int | None:
    """The model's /v1/models entry (the first entry that says, when none is the model): vLLM's
    and llm-d-inference-sim's `max_model_len`, llama.cpp's `meta.n_ctx` (one slot's context; its
    `n_ctx_train` is the training context, not the served one)."""
    data = body.get("data") if isinstance(body, dict) else None
    entries = [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []
    found = [(d.get("id"), n) for d in entries if (n := _entry_context(d)) is not None]
    return next((n for id_, n in found if id_ == model), found[0][1] if found else None)


def _entry_context(entry: dict[str, Any]) -> int | None:
    meta = entry.get("meta")
    return _tokens(entry.get("max_model_len")) or (
        _tokens(meta.get("n_ctx")) if isinstance(meta, dict) else None
    )


def context_of_props(body: object) -> int | None:
    """llama.cpp's llama-server: `n_ctx` in /props (`default_generation_settings`, or top level
    in older builds): the context of one slot, what a single request must fit in."""
    if not isinstance(body, dict):
        return None
    settings = body.get("default_generation_settings")
    nested = _tokens(settings.get("n_ctx")) if isinstance(settings, dict) else None
    return nested or _tokens(body.get("n_ctx"))


def _tokens(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def discover_context(target: Target, model: str, timeout_s: float = 5.0) -> tuple[int | None, str]:
    """The model's context length in tokens and the answer it was read from; (None, what was
    asked) when no server says. The model server (a stack's primary) is asked before the target
    itself: a gateway's /v1/models lists names only."""
    headers = wire.current().auth(target.api_key)
    urls = list(dict.fromkeys(u for u in (target.tokenizer_url, target.url) if u))
    asked = []
    for url in urls:
        for path, parse in (
            ("/v1/models", lambda b: context_of_models(b, model)),
            ("/props", context_of_props),
        ):
            asked.append(f"{url}{path}")
            try:
                r = http_get(f"{url}{path}", headers=headers, timeout=timeout_s)
                found = parse(r.json()) if r.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                continue
            if found is not None:
                return found, f"{url}{path}"
    return None, (
        f"the server did not say its context (asked {', '.join(asked)} for max_model_len or n_ctx)"
    )
