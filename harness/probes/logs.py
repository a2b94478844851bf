"""Error answers with known request ids, so the log check always has answers to look for: a
missing key (401), an unknown key (403) and a body that is not JSON (400), through nginx."""

from __future__ import annotations

import uuid

from harness.clients.http import new_client
from harness.verdict.logs import ErrorAnswer

_PATH = "/v1/chat/completions"
_BODY = {"messages": [{"role": "user", "content": "log check"}], "max_tokens": 1}


def send_error_requests(nginx: str, api_key: str) -> list[ErrorAnswer]:
    tag = uuid.uuid4().hex[:12]
    cases: list[tuple[str, dict[str, str], bytes | None]] = [
        ("no-key", {}, None),
        ("bad-key", {"Authorization": "Bearer sk-not-a-key-of-this-stack"}, None),
        ("bad-body", {"Authorization": f"Bearer {api_key}"}, b"{not json"),
    ]
    out: list[ErrorAnswer] = []
    with new_client(timeout=30) as http:
        for name, headers, raw in cases:
            rid = f"logcheck-{tag}-{name}"
            h = {"X-Request-Id": rid, "Content-Type": "application/json", **headers}
            if raw is None:
                r = http.post(f"{nginx}{_PATH}", json=_BODY, headers=h)
            else:
                r = http.post(f"{nginx}{_PATH}", content=raw, headers=h)
            out.append(ErrorAnswer(rid, r.status_code, "probe"))
    return out
