"""Who may talk to the local backend: loopback binding and refusal of requests from web pages.

The backend runs model code for whoever reaches it and accepts any credentials, so it listens on
loopback only (:func:`check_loopback`) and refuses what a browser sends on a user's behalf: a
cross-site ``Origin`` or a ``Host`` that is not a local name, as in DNS rebinding
(:func:`foreign_request`). Pure functions over strings and headers; the gateway applies them.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Any

__all__ = ["NonLoopbackHostError", "check_loopback", "foreign_request"]


class NonLoopbackHostError(ValueError):
    """Raised when asked to bind anything but a loopback address."""


def check_loopback(host: str) -> str:
    """Return ``host`` if it is a loopback address (127.0.0.0/8, ::1, localhost), else raise."""
    candidate = host.strip("[]")
    if candidate == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        raise NonLoopbackHostError(
            f"Refusing to bind the catkit local backend to {host!r}: not an IP address. "
            "It only listens on loopback (127.0.0.1, another 127.x.y.z, or ::1)."
        ) from None
    if not address.is_loopback:
        raise NonLoopbackHostError(
            f"Refusing to bind the catkit local backend to {host!r}: it is not a loopback address. "
            "The backend accepts any credentials, so it only listens on 127.0.0.0/8 or ::1."
        )
    return candidate


@functools.lru_cache(maxsize=512)  # pure; called for every request's Host (and Origin)
def _is_local_name(host: str) -> bool:
    """A Host/Origin host name that only ever means this machine (or AWS's own S3 names, which no
    attacker can point at 127.0.0.1): loopback IPs, ``localhost`` and ``*.localhost``."""
    name = host.strip().lower().rstrip(".")
    if name.startswith("["):
        name = name[1 : name.find("]")] if "]" in name else name[1:]
    elif name.count(":") == 1:
        name = name.rsplit(":", 1)[0]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def foreign_request(headers: Any) -> str | None:
    """Why a request must be refused as coming from a web page rather than an SDK, or None.

    The backend runs model code for whoever reaches it, so besides binding loopback only it
    refuses what browsers send on a user's behalf: a cross-site ``Origin`` (a page posting to
    127.0.0.1) and a ``Host`` that is not a local name (DNS rebinding). AWS SDKs send neither; a
    virtual-hosted S3 name under amazonaws.com is fine (nobody else controls that DNS).
    """
    origin = headers.get("Origin")
    if origin and origin != "null":
        netloc = origin.split("://", 1)[-1].split("/", 1)[0]
        if not _is_local_name(netloc):
            return f"Origin {origin!r} is not this machine"
    elif origin == "null":
        return "a sandboxed or file:// page (Origin: null)"
    host = headers.get("Host")
    if host and not _is_local_name(host):
        name = host.rsplit(":", 1)[0].lower().rstrip(".")
        if not (name.endswith(".amazonaws.com") or name.endswith(".amazonaws.com.cn")):
            return f"Host {host!r} is not a loopback name"
    return None
