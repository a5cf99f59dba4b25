"""Slow clients and stopping (issue 14 findings 7, 8) against a real model-server process: idle and
trickled request heads are dropped, a trickled body gets 408, connections past the cap get 503,
and SIGTERM stops the server at once when nothing is in flight - also after a 413 on a >6 MB body
whose client keeps the connection open (aiohttp otherwise lingers reading the refused body)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from catkit.serving.http_limits import HttpLimits

sys.path.insert(0, str(Path(__file__).parents[1] / "reliability"))  # rel_support (importlib mode)

from rel_support import raw_connect, read_until_closed

from catkit.testing import wait_until


@pytest.fixture
def server(make_model: Any, spawn_server: Any, sv: Any) -> Any:
    proc = spawn_server(str(make_model("echo", sv.ECHO)), "--header-timeout", "1", "--max-connections", "4")
    asyncio.run(sv.wait_http_ping(proc.wait_ready()))  # model loaded: the 413 is about the body
    return proc


def test_idle_and_trickled_heads_are_dropped(server: Any) -> None:
    idle = raw_connect(server.port)
    trickle = raw_connect(server.port)
    trickle.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\n")  # ... and never the rest
    t0 = time.monotonic()
    assert read_until_closed(idle) == b"" and read_until_closed(trickle) == b""
    assert time.monotonic() - t0 < 9  # closed by the server's 1 s head timeout, not our 10 s recv timeout
    idle.close()
    trickle.close()


def test_a_trickled_body_gets_408_and_the_connection_closes(make_model: Any, spawn_server: Any, sv: Any) -> None:
    proc = spawn_server(str(make_model("echo", sv.ECHO)), "--body-timeout", "1")
    asyncio.run(sv.wait_http_ping(proc.wait_ready()))  # model loaded: the answer is about the body
    s = raw_connect(proc.port)
    s.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
              b"Content-Length: 100\r\n\r\n" + b"x" * 10)  # 90 bytes never come
    answer = read_until_closed(s)
    assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive in time" in answer, answer
    s.close()
    assert HttpLimits.from_env({"CATKIT_HTTP_BODY_TIMEOUT_SECONDS": "2"}).body_timeout == 2.0
    with pytest.raises(ValueError, match="CATKIT_HTTP_MAX_CONNECTIONS"):
        HttpLimits.from_env({"CATKIT_HTTP_MAX_CONNECTIONS": "lots"})


def test_connections_beyond_the_cap_get_503(server: Any) -> None:
    held = [raw_connect(server.port) for _ in range(4)]
    try:
        extra = raw_connect(server.port)
        answer = read_until_closed(extra)
        assert answer.startswith(b"HTTP/1.1 503") and b"Too many open connections" in answer
        extra.close()
    finally:
        for s in held:
            s.close()


def _ping(s: Any) -> bytes:
    s.sendall(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_at_the_cap_idle_keep_alive_connections_make_room(server: Any) -> None:
    # four clients that each got an answer and keep their connection open (a pool, or a client
    # that leaves sockets to the garbage collector): a fifth client is served, not refused
    held = [raw_connect(server.port) for _ in range(4)]
    try:
        for s in held:
            assert _ping(s).startswith(b"HTTP/1.1 200")
        extra = raw_connect(server.port)
        assert _ping(extra).startswith(b"HTTP/1.1 200")
        extra.close()
    finally:
        for s in held:
            s.close()


def test_sigterm_after_a_413_stops_at_once(server: Any) -> None:
    s = raw_connect(server.port)
    s.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
              b"Content-Length: 7000000\r\n\r\n" + b"x" * 1_000_000)  # then stops sending, keeps it open
    head = s.recv(65536)
    assert head.startswith(b"HTTP/1.1 413"), head
    t0 = time.monotonic()
    server.terminate()
    wait_until(lambda: server.proc.poll() is not None, 8, what="the server to stop after SIGTERM")
    assert server.proc.returncode == 0
    assert time.monotonic() - t0 < 8  # aiohttp's lingering read of the refused body took ~10 s
    s.close()
