"""The server as a real process: ready file, tarballs, SIGTERM drain, loopback refusal, CLI, logs."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from catkit.serving import server as server_module
from catkit.testing import model_archive, wait_until


def test_ready_file_ping_and_invocations(make_model: Any, spawn_server: Any, sv: Any) -> None:
    proc = spawn_server(str(make_model("echo", sv.ECHO)))
    url = proc.wait_ready()

    async def check() -> None:
        await sv.wait_http_ping(url)
        status, headers, body = await sv.http("POST", url + "/invocations", data=b'{"x": 1}',
                                              headers={"Content-Type": "application/json"})
        assert (status, body) == (200, b'{"x": 1}')
        assert int(headers["X-Catkit-Model-Latency-Us"]) >= 0

    asyncio.run(check())
    log = proc.log()
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ INFO ", log, re.M), log  # timestamped stderr
    assert "listening on http://127.0.0.1:" in log


async def _terminate_during_a_call(sv: Any, proc: Any, model: Path, seconds: str) -> asyncio.Future[Any]:
    """Start a SLOW call of ``seconds``, SIGTERM the server once the handler runs it; the call's future."""
    url = proc.wait_ready()
    await sv.wait_http_ping(url)
    call = asyncio.ensure_future(sv.http("POST", url + "/invocations", data=seconds.encode(),
                                         headers={"Content-Type": "application/json"}))
    await sv.wait_until(lambda: sv.started_calls(model) == 1, 30, what="the call to reach the handler")
    proc.terminate()
    return call


async def _refuses_connections(sv: Any, url: str) -> bool:
    try:
        await sv.http("GET", url + "/ping")
    except aiohttp.ClientConnectionError:
        return True
    return False


def test_sigterm_drains_in_flight_requests_then_exits_0(make_model: Any, spawn_server: Any, sv: Any) -> None:
    model = make_model("slow", sv.SLOW)
    proc = spawn_server(str(model))

    async def check() -> None:
        slow = await _terminate_during_a_call(sv, proc, model, "1.5")
        deadline = asyncio.get_running_loop().time() + 30
        while not await _refuses_connections(sv, proc.url):  # no longer accepting connections ...
            assert asyncio.get_running_loop().time() < deadline, "still accepting connections after SIGTERM"
            await asyncio.sleep(0.02)
        assert not slow.done()  # ... while the call is still running
        status, _, body = await slow
        assert (status, body) == (200, b'{"slept": 1.5}')

    asyncio.run(check())
    assert proc.proc.wait(timeout=20) == 0
    assert "draining in-flight requests" in proc.log()


def test_non_loopback_host_is_refused_with_a_clear_error(make_model: Any, tmp_path: Path, sv: Any) -> None:
    ready = tmp_path / "ready.json"
    result = subprocess.run(
        [sys.executable, "-m", "catkit.serving.server", str(make_model("echo", sv.ECHO)),
         "--host", "0.0.0.0", "--port", "0", "--ready-file", str(ready)],
        capture_output=True, text=True, timeout=60, cwd=sv.ROOT,
    )
    assert result.returncode == 2
    assert "loopback only" in result.stderr and "--host 127.0.0.1" in result.stderr
    assert not ready.exists()


def test_serves_a_model_tarball(make_model: Any, spawn_server: Any, tmp_path: Path, sv: Any) -> None:
    from catkit.build import pack_model

    archive = pack_model(make_model("echo", sv.ECHO), tmp_path / "model.tar.gz")
    proc = spawn_server(str(archive))
    url = proc.wait_ready()

    async def check() -> None:
        await sv.wait_http_ping(url)
        status, _, body = await sv.http("POST", url + "/invocations", data=b"from-tarball")
        assert (status, body) == (200, b"from-tarball")

    asyncio.run(check())


def test_unsafe_tarball_is_refused_and_ping_says_why(spawn_server: Any, tmp_path: Path, sv: Any) -> None:
    archive = tmp_path / "evil.tar.gz"
    archive.write_bytes(model_archive(None, {"../escaped.py": "def model_fn(d):\n    return 1\n"}))
    proc = spawn_server(str(archive))
    url = proc.wait_ready()

    async def failure() -> str | None:
        status, _, body = await sv.http("GET", url + "/ping")
        assert status == 503
        return body.decode() if b"failed to load" in body else None

    async def check() -> str:
        deadline = asyncio.get_running_loop().time() + 20
        while (message := await failure()) is None:
            assert asyncio.get_running_loop().time() < deadline, "no load failure reported"
            await asyncio.sleep(0.05)
        return message

    message = asyncio.run(check())
    assert "../escaped.py" in message
    assert not (tmp_path / "escaped.py").exists()


def test_catkit_serve_cli_runs_the_server(make_model: Any, spawn_server: Any, sv: Any) -> None:
    proc = spawn_server("serve", str(make_model("echo", sv.ECHO)), module="catkit.cli")
    asyncio.run(sv.wait_http_ping(proc.wait_ready()))
    proc.terminate()
    assert proc.proc.wait(timeout=20) == 0


def test_environment_defaults_for_workers_and_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_WORKERS", "3")
    monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_TIMEOUT", "12.5")
    assert server_module.default_workers() == 3
    monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_WORKERS", "1000")
    assert server_module.default_workers() == max(4, os.cpu_count() or 1)
    assert server_module.default_model_timeout() == 12.5
    monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_WORKERS", "many")
    monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_TIMEOUT", "0")
    assert 2 <= server_module.default_workers() <= 4
    assert server_module.default_model_timeout() is None


def test_ready_file_is_written_atomically(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "ready.json"
    server_module.write_ready_file(target, 1234)
    assert target.read_text().startswith('{"port": 1234, "pid": ')
    assert [p.name for p in target.parent.iterdir()] == ["ready.json"]  # no temp files left


def test_sigterm_during_a_hung_model_load_still_exits_0(make_model: Any, spawn_server: Any) -> None:
    hung = make_model("hung", """
    import pathlib, time

    def model_fn(d):
        pathlib.Path(d, "loading").touch()
        time.sleep(120)
    """)
    proc = spawn_server(str(hung))
    proc.wait_ready()
    wait_until((hung / "loading").exists, 30, what="model_fn to start (and hang)")
    proc.terminate()
    assert proc.proc.wait(timeout=20) == 0


def test_drain_is_bounded_when_a_request_never_finishes(make_model: Any, spawn_server: Any, sv: Any) -> None:
    model = make_model("slow", sv.SLOW)
    proc = spawn_server(str(model), "--drain-seconds", "0.5")

    async def check() -> None:
        stuck = await _terminate_during_a_call(sv, proc, model, "120")
        with pytest.raises(aiohttp.ClientError):
            await stuck  # the connection is closed once the drain window ends

    asyncio.run(check())
    assert proc.proc.wait(timeout=20) == 0


def test_port_in_use_is_a_clear_error(make_model: Any, tmp_path: Path, sv: Any) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "catkit.serving.server", str(make_model("echo", sv.ECHO)),
             "--port", str(port)],
            capture_output=True, text=True, timeout=60, cwd=sv.ROOT,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
