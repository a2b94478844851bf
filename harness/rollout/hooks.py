"""Call a hook of an external deployment (`external.rollout` of its stack spec): its own tooling
moves the traffic, the harness only says when and to what weight.

A command runs without a shell, in a session of its own (a Ctrl-C at the terminal reaches the
harness, which then calls the rollback, not the hook half-way), and is stopped with its whole
process group when it outlives its timeout. A hook fails when it exits non-zero, answers 400 or
above, cannot be reached, or is not done in time; the failure names the hook and quotes the end of
what it said.
"""

from __future__ import annotations

import os
import signal
import subprocess

import httpx

from harness.clients.http import new_client
from harness.errors import HarnessError
from harness.spec.external import Hook

# The end of a hook's output kept in a reason (a failing script's last lines say why).
OUTPUT_CHARS = 600
STOP_GRACE_S = 5.0


class HookFailed(HarnessError):
    """A hook did not make its move; the message says which, how and what it said."""


def weight_text(share: float) -> str:
    """The share in percent as a hook receives it: 5, 50, 100, 12.5."""
    return f"{share * 100:.2f}".rstrip("0").rstrip(".")


def _fill(text: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        text = text.replace(f"{{{name}}}", value)
    return text


def _tail(output: str) -> str:
    output = output.strip()
    if not output:
        return "(no output)"
    return output if len(output) <= OUTPUT_CHARS else "..." + output[-OUTPUT_CHARS:]


def call_hook(name: str, hook: Hook, share: float) -> str:
    """Make the move; the end of the hook's output (or answer) if it did, HookFailed if not."""
    values = {"weight": weight_text(share), "share": f"{share:g}", "action": name}
    if hook.command is not None:
        return _run_command(name, [_fill(a, values) for a in hook.command], values, hook.timeout_s)
    assert hook.url is not None  # the spec holds one of the two
    headers = {k: _fill(v, values) for k, v in hook.headers.items()}
    if hook.auth is not None:
        headers |= hook.auth.headers()
    body = None if hook.body is None else _fill(hook.body, values)
    return _call_http(name, hook.method, _fill(hook.url, values), body, headers, hook.timeout_s)


def _stop_group(proc: subprocess.Popen[str]) -> str:
    """Stop the hook's process group (its own session: only what it started) and return what it
    had written."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            out, _ = proc.communicate(timeout=STOP_GRACE_S)
            return out or ""
        except subprocess.TimeoutExpired:
            continue
    return ""


def _run_command(name: str, argv: list[str], values: dict[str, str], timeout_s: float) -> str:
    shown = " ".join(argv)
    env = {**os.environ, **{f"HARNESS_ROLLOUT_{k.upper()}": v for k, v in values.items()}}
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        raise HookFailed(f"{name} hook `{shown}` could not start: {exc.strerror}") from None
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        out = _stop_group(proc)
        raise HookFailed(
            f"{name} hook `{shown}` did not finish within {timeout_s:g}s (stopped): {_tail(out)}"
        ) from None
    except BaseException:  # an interruption: the hook is stopped, the caller rolls back
        _stop_group(proc)
        raise
    if proc.returncode != 0:
        raise HookFailed(f"{name} hook `{shown}` exited {proc.returncode}: {_tail(out)}")
    return _tail(out)


def _call_http(
    name: str, method: str, url: str, body: str | None, headers: dict[str, str], timeout_s: float
) -> str:
    what = f"{name} hook {method} {url}"
    try:
        with new_client(timeout=timeout_s) as client:
            r = client.request(method, url, content=body, headers=headers)
    except httpx.TimeoutException:
        raise HookFailed(f"{what} did not answer within {timeout_s:g}s") from None
    except httpx.HTTPError as exc:
        raise HookFailed(f"{what} failed: {type(exc).__name__}: {exc}") from None
    if r.status_code >= 400:
        raise HookFailed(f"{what} answered {r.status_code}: {_tail(r.text)}")
    return f"{r.status_code} {_tail(r.text)}"
