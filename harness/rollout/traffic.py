"""What moves a rollout's traffic: the harness's own split front (both versions started here), or
an external deployment's own tooling through its hooks (`external.rollout` of its stack spec).

Either way `share` is where the candidate's share is (or, after a failed move, may be): a rollout
that ends anywhere but 0 is rolled back before it exits.
"""

from __future__ import annotations

from typing import Protocol

from harness.data.progress import Progress
from harness.rollout.hooks import call_hook, weight_text
from harness.spec.external import ExternalRollout
from harness.stack.split_front import SplitFront, SwitchMode


class Traffic(Protocol):
    @property
    def share(self) -> float: ...

    def set_share(self, share: float, mode: SwitchMode) -> None: ...

    def alive(self) -> bool: ...


class FrontTraffic:
    """The split front: a move rewrites its weights and reloads (or restarts) its nginx."""

    def __init__(self, front: SplitFront) -> None:
        self.front = front

    @property
    def share(self) -> float:
        return self.front.share

    def set_share(self, share: float, mode: SwitchMode) -> None:
        self.front.set_share(share, mode)

    def alive(self) -> bool:
        return self.front.service.alive()


class HookTraffic:
    """An external deployment's traffic, moved by its hooks: `set_weight` to each share above 0,
    `rollback` to 0, `promote` once the candidate holds all traffic. A failed hook raises
    HookFailed; the share is then where the move was headed, so that a rollback follows."""

    def __init__(self, hooks: ExternalRollout, progress: Progress) -> None:
        self.hooks, self.progress = hooks, progress
        self.share = 0.0

    def alive(self) -> bool:
        return True

    def set_share(self, share: float, mode: SwitchMode) -> None:
        self.share = share
        if share <= 0:
            self._call("rollback", 0.0)
        else:
            self._call("set_weight", share)

    @property
    def promotes(self) -> bool:
        return self.hooks.promote is not None

    def promote(self) -> None:
        self._call("promote", self.share)

    def _call(self, name: str, share: float) -> None:
        hook = self.hooks.hooks()[name]
        said = call_hook(name, hook, share)
        self.progress(f"  {name} hook ({weight_text(share)}%): done: {said.splitlines()[-1]}")
