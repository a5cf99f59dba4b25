"""Unix-socket addresses of model servers: how the local backend reaches its instances cheaply.

The backend forwards every InvokeEndpoint to an instance process; over loopback TCP the kernel's
TCP path costs the backend ~6 us of CPU more per request than a Unix socket (benchmarks/gateway.py).
So on Linux each instance also listens on an abstract Unix socket (a name, no file: nothing to
clean up, no path-length limit of ``CATKIT_HOME``), written ``@name`` on the command line. Like the
TCP port, anyone on the machine may connect; the instance token (:mod:`catkit.serving.auth`) is
what keeps others out. The TCP port stays (health checks, ``catkit local`` tools, direct clients).
"""

from __future__ import annotations

import secrets
import socket
import sys

__all__ = ["bind_unix", "new_socket_name", "socket_address"]


def new_socket_name() -> str | None:
    """A fresh abstract socket name (``@catkit-...``) on Linux; None elsewhere (TCP only)."""
    if not sys.platform.startswith("linux"):
        return None
    return f"@catkit-{secrets.token_hex(12)}"


def socket_address(name: str) -> str:
    """What ``socket.bind``/``connect`` take for ``name``: ``@x`` is the abstract name ``\\0x``,
    anything else a file path."""
    return "\0" + name[1:] if name.startswith("@") else name


def bind_unix(name: str, backlog: int = 128) -> socket.socket:
    """A listening, non-blocking stream socket bound to ``name``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(socket_address(name))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
