"""A model server whose handler keeps hanging: it answers each call with a timeout and replaces the
stuck worker thread; once no worker is left it fails /ping, so the backend's health checks replace
the instance instead of leaving a process that looks healthy but can never answer."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from catkit.serving.workers import WorkerPool
from catkit.testing import ECHO_INFERENCE, wait_until, write_model_dir


def _status(url: str, data: bytes | None = None, ctype: str = "text/plain") -> int:
    req = urllib.request.Request(url, data=data, headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_hanging_handler_wedges_then_fails_ping(tmp_path):
    model = write_model_dir(tmp_path / "model", ECHO_INFERENCE)
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "catkit.serving.server", str(model), "--port", "0", "--ready-file", str(ready),
         "--workers", "1", "--model-timeout", "0.2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        wait_until(ready.exists, 30, what="the model server")
        base = f"http://127.0.0.1:{json.loads(ready.read_text())['port']}"
        wait_until(lambda: _status(base + "/ping") == 200, 30, what="the model to load")
        stuck_allowed = WorkerPool(1).max_stuck
        for n in range(1, stuck_allowed + 2):
            assert _status(base + "/invocations", b"", "application/x-hang") == 504
            if n <= stuck_allowed:  # a fresh worker replaced the stuck one: still healthy and serving
                assert _status(base + "/ping") == 200
                assert _status(base + "/invocations", b"hi") == 200
        assert _status(base + "/ping") == 503
    finally:
        proc.kill()
        proc.wait(10)
