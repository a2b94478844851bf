"""Children the tests start, as a user's terminal starts them."""

from __future__ import annotations

import signal


def default_sigint() -> None:
    """A `preexec_fn`: SIGINT back to its default. A test run started as a background job of a
    non-interactive shell inherits SIGINT ignored, and Python then installs no KeyboardInterrupt
    handler: a test that presses Ctrl-C on the harness would see it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
