"""Model servers also listen on a Unix socket (``--unix-socket``): what the local backend forwards over."""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from typing import Any

import pytest

from catkit.local.fleet.forward import KeepAlivePool
from catkit.serving.unix_socket import new_socket_name, socket_address

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract Unix sockets are Linux's")


def test_socket_names():
    name = new_socket_name()
    assert name is not None and name.startswith("@catkit-") and name != new_socket_name()
    assert socket_address(name) == "\0" + name[1:] and socket_address("/tmp/x.sock") == "/tmp/x.sock"


def test_server_answers_the_same_over_its_unix_socket(make_model: Any, spawn_server: Any, sv: Any) -> None:
    name = f"@catkit-test-{secrets.token_hex(8)}"
    proc = spawn_server(str(make_model("echo", sv.ECHO)), "--unix-socket", name)
    url = proc.wait_ready()
    assert json.loads(proc.ready_file.read_text())["unix"] == name

    async def check() -> None:
        await sv.wait_http_ping(url)
        pool = KeepAlivePool()
        try:
            headers = {"Content-Type": "application/json"}
            over_tcp = await pool.post("127.0.0.1", proc.port, "/invocations", headers, b'{"x": 1}', 10)
            # port 9 (discard) is closed: the answers can only come over the socket
            over_unix = [await pool.post("127.0.0.1", 9, "/invocations", headers, b'{"x": %d}' % i, 10, name)
                         for i in range(3)]
        finally:
            pool.close()
        assert over_tcp[0] == 200 and over_tcp[2] == b'{"x": 1}'
        assert [(s, b) for s, _, b in over_unix] == [(200, b'{"x": %d}' % i) for i in range(3)]
        assert over_unix[0][1]["content-type"] == over_tcp[1]["content-type"]

    asyncio.run(check())


def test_server_without_its_unix_socket_serves_over_tcp(make_model: Any, spawn_server: Any, sv: Any) -> None:
    from catkit.serving.unix_socket import bind_unix

    name = f"@catkit-test-{secrets.token_hex(8)}"
    taken = bind_unix(name)  # the name is in use: the server cannot listen there
    try:
        proc = spawn_server(str(make_model("echo", sv.ECHO)), "--unix-socket", name)
        url = proc.wait_ready()
        assert "unix" not in json.loads(proc.ready_file.read_text())  # the backend then forwards over TCP

        async def check() -> None:
            await sv.wait_http_ping(url)
            pool = KeepAlivePool()
            try:
                status, _, body = await pool.post("127.0.0.1", proc.port, "/invocations",
                                                  {"Content-Type": "application/json"}, b'{"x": 1}', 10)
            finally:
                pool.close()
            assert (status, body) == (200, b'{"x": 1}')

        asyncio.run(check())
    finally:
        taken.close()
