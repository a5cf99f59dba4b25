"""The server as a real process: ready file, tarballs, SIGTERM drain, loopback refusal, CLI, logs."""

from __future__ import annotations

import asyncio
import io
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from catkit.serving import server as server_module


def test_ready_file_ping_and_invocations(make_model: Any, spawn_server: Any, sv: Any) -> None:
    proc = spawn_server(str(make_model("echo", sv.ECHO)))
    url = proc.wait_ready()

    async def check() -> None:
        for _ in range(500):
            status, _, _ = await sv.http("GET", url + "/ping")
            if status == 200:
                break
            await asyncio.sleep(0.02)
        assert status == 200
        status, headers, body = await sv.http("POST", url + "/invocations", data=b'{"x": 1}',
                                              headers={"Content-Type": "application/json"})
        assert (status, body) == (200, b'{"x": 1}')
        assert int(headers["X-Catkit-Model-Latency-Us"]) >= 0

    asyncio.run(check())
    log = proc.log()
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ INFO ", log, re.M), log  # timestamped stderr
    assert "listening on http://127.0.0.1:" in log


def test_sigterm_drains_in_flight_requests_then_exits_0(make_model: Any, spawn_server: Any, sv: Any) -> None:
    proc = spawn_server(str(make_model("slow", sv.SLOW)))
    url = proc.wait_ready()

    async def check() -> None:
        for _ in range(500):
            if (await sv.http("GET", url + "/ping"))[0] == 200:
                break
            await asyncio.sleep(0.02)
        slow = asyncio.ensure_future(sv.http("POST", url + "/invocations", data=b"1.5",
                                             headers={"Content-Type": "application/json"}))
        await asyncio.sleep(0.4)
        proc.terminate()
        await asyncio.sleep(0.3)
        with pytest.raises(aiohttp.ClientConnectionError):  # no longer accepting connections
            await sv.http("GET", url + "/ping")
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
        for _ in range(500):
            if (await sv.http("GET", url + "/ping"))[0] == 200:
                break
            await asyncio.sleep(0.02)
        status, _, body = await sv.http("POST", url + "/invocations", data=b"from-tarball")
        assert (status, body) == (200, b"from-tarball")

    asyncio.run(check())


def test_unsafe_tarball_is_refused_and_ping_says_why(spawn_server: Any, tmp_path: Path, sv: Any) -> None:
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = b"def model_fn(d):\n    return 1\n"
        info = tarfile.TarInfo("../escaped.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    proc = spawn_server(str(archive))
    url = proc.wait_ready()

    async def check() -> str:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            status, _, body = await sv.http("GET", url + "/ping")
            assert status == 503
            if b"failed to load" in body:
                return body.decode()
            await asyncio.sleep(0.05)
        raise AssertionError("no load failure reported")

    message = asyncio.run(check())
    assert "../escaped.py" in message
    assert not (tmp_path / "escaped.py").exists()


def test_catkit_serve_cli_runs_the_server(make_model: Any, spawn_server: Any, sv: Any) -> None:
    proc = spawn_server("serve", str(make_model("echo", sv.ECHO)), module="catkit.cli")
    url = proc.wait_ready()

    async def check() -> None:
        for _ in range(500):
            if (await sv.http("GET", url + "/ping"))[0] == 200:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("catkit serve never became healthy")

    asyncio.run(check())
    proc.terminate()
    assert proc.proc.wait(timeout=20) == 0


def test_environment_defaults_for_workers_and_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_WORKERS", "3")
    monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_TIMEOUT", "12.5")
    assert server_module.default_workers() == 3
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
    hung = make_model("hung", "import time\n\ndef model_fn(d):\n    time.sleep(120)\n")
    proc = spawn_server(str(hung))
    proc.wait_ready()
    time.sleep(0.3)
    proc.terminate()
    assert proc.proc.wait(timeout=20) == 0


def test_drain_is_bounded_when_a_request_never_finishes(make_model: Any, spawn_server: Any, sv: Any) -> None:
    proc = spawn_server(str(make_model("slow", sv.SLOW)), "--drain-seconds", "0.5")
    url = proc.wait_ready()

    async def check() -> None:
        for _ in range(500):
            if (await sv.http("GET", url + "/ping"))[0] == 200:
                break
            await asyncio.sleep(0.02)
        stuck = asyncio.ensure_future(sv.http("POST", url + "/invocations", data=b"120",
                                              headers={"Content-Type": "application/json"}))
        await asyncio.sleep(0.3)
        proc.terminate()
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
