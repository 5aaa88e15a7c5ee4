"""Offline, proven: CI (``.ci/run``) runs the test command in a network namespace of its own
with only the loopback up, and sets ``COURSE_NETWORK_CUT=1``. This test checks that the cut is
real, so that a green CI run shows that no notebook, test or exercise downloads anything."""

from __future__ import annotations

import os
import socket

import pytest

CUT = os.environ.get("COURSE_NETWORK_CUT") == "1"


@pytest.mark.skipif(not CUT, reason="the network is cut only in CI (.ci/run: unshare --net)")
@pytest.mark.parametrize("address", [("151.101.0.223", 443), ("1.1.1.1", 53), ("8.8.8.8", 443)])
def test_no_address_outside_this_machine_can_be_reached(address):
    with pytest.raises(OSError):
        socket.create_connection(address, timeout=3).close()


@pytest.mark.skipif(not CUT, reason="the network is cut only in CI (.ci/run: unshare --net)")
def test_names_do_not_resolve_and_the_loopback_works():
    with pytest.raises(OSError):
        socket.getaddrinfo("pypi.org", 443)
    server = socket.create_server(("127.0.0.1", 0))  # what Jupyter kernels talk over
    with server, socket.create_connection(server.getsockname(), timeout=3):
        pass
