"""The `Server-Timing` response header (W3C): `name;dur=ms;desc="..."`, comma-separated.

The reference gateway sends `gw;dur=` (its own time up to its headers) and `upstream;dur=` (its
wait on the model server), both in milliseconds from one clock (stack/gateway/overhead.py). Read
once per request, never per token.
"""

from __future__ import annotations

GATEWAY = "gw"
UPSTREAM = "upstream"


def durations(header: str) -> dict[str, float]:
    """Each metric's `dur` in ms; metrics without one, and unreadable values, are left out."""
    out: dict[str, float] = {}
    if not header:
        return out
    for metric in header.split(","):
        name, _, params = metric.partition(";")
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() != "dur":
                continue
            try:
                out[name.strip()] = float(value.strip().strip('"'))
            except ValueError:
                pass
            break
    return out
