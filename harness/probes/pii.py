"""PII filtering proven on a live answer: the model is asked to repeat a planted e-mail address,
phone number or SSN, and its answers (plain and streamed) must carry the placeholders, never a
value.

A few-shot "copy" conversation (three user lines, each repeated by the assistant, then the planted
value) makes even SmolLM2-135M-Instruct repeat it at temperature 0: of 50 planted values of each
kind, 149 of 150 plain and 150 of 150 streamed answers held the value verbatim, measured on a bare
llama-server as the reference stack runs it (README, "The gate"). A simulator in echo mode answers
the last user line, the value itself. The probe asks every model the entry lists (`/v1/models`),
in turn, with another planted value each round, until both answers carry a value of the kind,
filtered or not, for at most `len(PLANTED[kind])` rounds; a kind no answer carried is not proven
(skipped or a warning, never passed).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from harness.clients.http import http_get, json_object, new_client
from harness.probes.http import auth_headers, stream_chat
from harness.verdict.checks import CheckResult
from harness.verdict.practices import PiiAnswers, PiiUnanswered, carries, judge_pii_probe

NAME = "PII filtered from answers"
TIMEOUT_S = 60.0
# The values asked back, one per round; none is anyone's.
PLANTED: dict[str, tuple[str, ...]] = {
    "email": ("jane.doe@example.com", "omar.khan@example.org", "li.berg@example.net"),
    "phone": ("555-123-4567", "555-246-8013", "555-371-9260"),
    "ssn": ("123-45-6789", "321-54-9876", "456-78-1234"),
}
# The lines the assistant is shown repeating before it is given the planted one.
EXAMPLES: dict[str, tuple[str, ...]] = {
    "email": ("alex.morgan@example.org", "li.wei@example.net", "sam.taylor@example.com"),
    "phone": ("555-201-7788", "555-349-1020", "555-864-3155"),
    "ssn": ("219-09-9999", "078-05-1120", "457-55-5462"),
}
# Every value the probe sends, for the log check (no line may hold one).
SENT: dict[str, str] = {
    f"{what} {kind} {i + 1}": value
    for what, values in (("planted", PLANTED), ("example", EXAMPLES))
    for kind, vs in values.items()
    for i, value in enumerate(vs)
}


def copy_body(kind: str, value: str, model: str | None) -> dict[str, Any]:
    """A chat request whose natural answer is `value` itself. The marker in the system line
    keeps every request out of the response cache (each must be a live answer)."""
    marker = uuid.uuid4().hex[:8]
    messages = [{"role": "system", "content": f"Copy the user's text exactly. (probe {marker})"}]
    for line in EXAMPLES[kind]:
        messages += [{"role": "user", "content": line}, {"role": "assistant", "content": line}]
    messages.append({"role": "user", "content": value})
    body: dict[str, Any] = {"messages": messages, "max_tokens": 32, "temperature": 0}
    if model:
        body["model"] = model
    return body


def listed_models(base_url: str, api_key: str) -> list[str | None]:
    """The models the entry lists, in its order; [None] (its default) when it lists none."""
    try:
        r = http_get(f"{base_url}/v1/models", headers=auth_headers(api_key), timeout=TIMEOUT_S)
        data = json_object(r).get("data") if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        data = None
    ids: list[str | None] = [
        str(m["id"]) for m in data or [] if isinstance(m, dict) and m.get("id")
    ]
    return ids or [None]


def _excerpt(text: str, chars: int = 80) -> str:
    """The start of an answer on one line, for the report."""
    flat = " ".join(text.split())
    return flat if len(flat) <= chars else flat[: chars - 3] + "..."


def _content(r: httpx.Response) -> str:
    choices = json_object(r).get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    message = first.get("message") if isinstance(first, dict) else None
    return str(message.get("content") or "") if isinstance(message, dict) else ""


@dataclass(frozen=True)
class _Asked:
    answers: PiiAnswers | PiiUnanswered  # the last answers, or the request that failed
    tries: int
    model: str | None


def _ask_back(
    http: httpx.Client, base_url: str, api_key: str, kind: str, models: Sequence[str | None]
) -> _Asked:
    """Ask each model in turn, another planted value each round, until both the plain and the
    streamed answer carry the value (filtered or not)."""
    tries, model = 0, models[0]
    last: PiiAnswers | None = None
    for value in PLANTED[kind]:
        for model in models:
            tries += 1
            r = http.post(f"{base_url}/v1/chat/completions", json=copy_body(kind, value, model))
            streamed = stream_chat(base_url, api_key, copy_body(kind, value, model))
            if r.status_code != 200 or streamed.status != 200:
                unanswered = PiiUnanswered(kind, (r.status_code, streamed.status), model)
                return _Asked(unanswered, tries, model)
            last = PiiAnswers(kind, value, _content(r), streamed.text)
            if carries(last.plain, kind) and carries(last.streamed, kind):
                return _Asked(last, tries, model)
    assert last is not None, kind  # every kind has planted values, and there is a model
    return _Asked(last, tries, model)


def probe_pii(base_url: str, api_key: str, kinds: Sequence[str]) -> CheckResult:
    t0 = time.monotonic()
    models = listed_models(base_url, api_key)
    measured: dict[str, float | int | str | None] = {
        "kinds": ", ".join(kinds),
        "models": ", ".join(m or "(default)" for m in models),
    }
    found: list[PiiAnswers] = []
    unanswered: list[PiiUnanswered] = []
    with new_client(timeout=TIMEOUT_S, headers=auth_headers(api_key)) as http:
        for kind in kinds:
            asked = _ask_back(http, base_url, api_key, kind, models)
            measured |= {f"{kind}_tries": asked.tries, f"{kind}_model": asked.model}
            if isinstance(asked.answers, PiiUnanswered):
                unanswered.append(asked.answers)
                continue
            measured[f"{kind}_answer"] = _excerpt(asked.answers.plain)
            found.append(asked.answers)
    bound = max((len(PLANTED[k]) for k in kinds), default=0) * len(models)
    outcome, reasons = judge_pii_probe(found, unanswered, bound)
    return CheckResult(
        name=NAME,
        category="security",
        outcome=outcome,
        reasons=reasons,
        measured=measured,
        duration_s=round(time.monotonic() - t0, 3),
    )
