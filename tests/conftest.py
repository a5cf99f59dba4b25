"""Suite-wide guards: tests stay on loopback and leave the process environment as they found it.

* Every socket connection a test makes in this process must go to a loopback address (or a Unix
  socket); anything else fails the test at once with the address it tried. The live AWS checks
  (tests/helpers/test_aws_live.py) run only with ``CATKIT_AWS_LIVE=1``, which lifts the guard.
* ``os.environ`` is restored after each test, so a test that points the SDK at a local backend
  (``catkit.use_local()`` sets AWS_ENDPOINT_URL, a region and dummy credentials) cannot leak that
  into later tests.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator

import pytest

LIVE = os.environ.get("CATKIT_AWS_LIVE") == "1"


def _loopback(address: object) -> bool:
    if not isinstance(address, tuple) or not address:
        return True  # AF_UNIX paths and the like
    host = str(address[0])
    if host in ("localhost", "localhost.localdomain", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name: it would be resolved to who knows where


class NonLoopbackConnection(AssertionError):
    pass


def _guarded(method):
    def connect(self: socket.socket, address: object) -> object:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address):
            raise NonLoopbackConnection(
                f"a test tried to connect to {address!r}; tests run offline on loopback only "
                "(set CATKIT_AWS_LIVE=1 for the live AWS checks)"
            )
        return method(self, address)

    return connect


@pytest.fixture(autouse=True, scope="session")
def _loopback_only() -> Iterator[None]:
    if LIVE:
        yield
        return
    original = socket.socket.connect, socket.socket.connect_ex
    socket.socket.connect = _guarded(original[0])  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded(original[1])  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect, socket.socket.connect_ex = original  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _restore_environment() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)
