"""Free-port allocation: a port held on UDP alone (the log store's syslog input) is not free."""

from __future__ import annotations

import socket

from harness.stack.ports import _bindable, free_ports


def test_a_port_held_on_udp_only_is_not_handed_out() -> None:
    (port,) = free_ports(1)
    assert _bindable(port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind(("127.0.0.1", port))
        assert not _bindable(port)  # TCP alone would have said free
    assert _bindable(port)
