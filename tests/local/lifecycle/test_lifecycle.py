"""start/stop/status, one backend per CATKIT_HOME, stale pid files, loopback-only binding."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest

from catkit.cli import main as catkit_main
from catkit.local import ensure_running, lifecycle
from catkit.local.backend import Backend
from catkit.local.gateway import NonLoopbackHostError, check_loopback
from catkit.testing import wait_until


@pytest.fixture
def home(tmp_path, monkeypatch):
    root = tmp_path / "home"
    monkeypatch.setenv("CATKIT_HOME", str(root))
    monkeypatch.setenv("CATKIT_LOCAL_COMPONENTS", "")  # gateway only: fast and independent of other areas
    yield root
    lifecycle.stop(root, timeout=10)


def test_start_status_stop_via_cli(home, capsys):
    assert catkit_main(["local", "status", "--home", str(home)]) == 1
    assert "not running" in capsys.readouterr().out
    assert catkit_main(["local", "start", "--home", str(home), "--time-scale", "30"]) == 0
    url = capsys.readouterr().out.strip().splitlines()[-1]
    assert url.startswith("http://127.0.0.1:")
    doc = json.loads((home / "backend.json").read_text())
    assert doc["url"] == url and doc["time_scale"] == 30.0 and doc["pid"] > 0
    assert (home / "backend.json").stat().st_mode & 0o077 == 0
    assert (home / "logs" / "backend.log").exists()
    with pytest.raises(urllib.error.HTTPError) as unrouted:
        urllib.request.urlopen(url + "/not-an-aws-api", data=b"{}", timeout=5)
    assert unrouted.value.code == 400
    access = home / "logs" / "access.log"  # access lines are written at most half a second later
    wait_until(lambda: '"POST /not-an-aws-api" - - 400' in access.read_text(), timeout=10, what="the access line")
    assert catkit_main(["local", "status", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert url in out and str(doc["pid"]) in out and "time scale 30" in out and "uptime" in out
    assert catkit_main(["local", "stop", "--home", str(home)]) == 0
    assert "stopped" in capsys.readouterr().out
    assert lifecycle.status(home) is None
    assert not (home / "backend.json").exists()
    assert lifecycle.health(url) is None
    assert catkit_main(["local", "stop", "--home", str(home)]) == 0
    assert "not running" in capsys.readouterr().out


def test_ensure_running_is_idempotent_and_refuses_other_time_scale(home):
    url = ensure_running(time_scale=5)
    assert ensure_running() == url
    assert ensure_running(home=home, time_scale=5) == url
    with pytest.raises(lifecycle.BackendError) as info:
        ensure_running(time_scale=60)
    message = str(info.value)
    assert "time_scale=5" in message and "catkit local stop" in message and "--time-scale 60" in message


def test_one_backend_per_home(home):
    url = lifecycle.start(home)
    pid = lifecycle.status(home)["pid"]
    with pytest.raises(lifecycle.BackendError, match="already running"):
        lifecycle.run(home)
    proc = subprocess.run(
        [sys.executable, "-m", "catkit.local.lifecycle", "run", "--home", str(home), "--components", ""],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 3 and "already running" in proc.stderr
    doc = lifecycle.status(home)
    assert doc["pid"] == pid and doc["url"] == url  # the loser did not clobber backend.json


def test_concurrent_starts_share_one_backend(home):
    urls: list[str] = []
    errors: list[BaseException] = []

    def go():
        try:
            urls.append(lifecycle.start(home))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not errors
    assert len(set(urls)) == 1 and len(urls) == 3


def test_stale_pid_file_is_cleaned(home):
    home.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (home / "backend.json").write_text(
        json.dumps({"pid": dead.pid, "port": 1, "url": "http://127.0.0.1:1", "time_scale": 9.0, "started": 0})
    )
    assert lifecycle.status(home) is None
    assert not (home / "backend.json").exists()
    url = lifecycle.start(home, time_scale=2)  # not blocked by the stale file's time scale
    assert lifecycle.status(home)["url"] == url


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "example.com", "8.8.8.8"])
def test_non_loopback_hosts_are_refused(host, home, capsys):
    with pytest.raises(NonLoopbackHostError, match="loopback"):
        check_loopback(host)
    with pytest.raises(NonLoopbackHostError):
        Backend(home, host=host)
    assert catkit_main(["local", "start", "--home", str(home), "--host", host]) == 2
    assert "loopback" in capsys.readouterr().err
    assert lifecycle.status(home) is None


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_hosts_are_accepted(host):
    assert check_loopback(host) in {"127.0.0.1", "127.0.0.2", "::1"}


def test_port_in_use_is_a_clear_error(home):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(lifecycle.BackendError) as info:
            lifecycle.start(home, port=port)
    assert f"cannot listen on 127.0.0.1:{port}" in str(info.value)
    assert "Choose another --port" in str(info.value)
    assert lifecycle.status(home) is None


def test_foreground_mode_runs_until_ctrl_c(home):
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "catkit.cli", "local", "start", "--foreground", "--home", str(home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        doc = None
        while time.monotonic() < deadline and proc.poll() is None:
            doc = lifecycle.status(home)
            if doc and lifecycle.health(doc["url"]):
                break
            time.sleep(0.05)
        assert doc is not None and doc["pid"] == proc.pid
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert f"running at {doc['url']}" in out
    assert lifecycle.status(home) is None and not (home / "backend.json").exists()


def test_start_while_the_previous_backend_is_still_exiting(home):
    import fcntl
    import os
    import time

    home.mkdir(parents=True, exist_ok=True)
    fd = lifecycle._try_lock(home)  # a backend on its way out: still holds the lock, backend.json gone
    assert fd is not None
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(url=lifecycle.start(home, timeout=60)))
    worker.start()
    try:
        log = home / "logs" / "backend.log"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "already running" not in (
            log.read_text() if log.exists() else ""
        ):
            time.sleep(0.05)
        assert "already running" in log.read_text()  # the first child gave up on the lock
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    worker.join(90)
    assert result.get("url", "").startswith("http://127.0.0.1:")
    assert lifecycle.status(home)["url"] == result["url"]
