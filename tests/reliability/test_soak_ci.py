"""The CI variant of the soak benchmark (benchmarks/soak.py).

Runs ``CATKIT_SOAK_SECONDS`` real seconds (default 15 s under pytest; the issue's CI variant is
``CATKIT_SOAK_SECONDS=60``, the full run ``.venv/bin/python benchmarks/soak.py --seconds 600``) of
diurnal traffic with a spike against an auto-scaled and a multi-model endpoint. Asserts that no
request failed and that the multi-model endpoint loaded and evicted models; scale-out/in is
asserted from 60 s on and memory flatness (<= 10 % growth) from 300 s on, where they are meaningful.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECONDS = float(os.environ.get("CATKIT_SOAK_SECONDS") or 15)


@pytest.mark.slow
def test_soak_short_run_has_no_failures(tmp_path):
    out = tmp_path / "soak.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--seconds", str(SECONDS), "--json", str(out)],
        capture_output=True, text=True, timeout=SECONDS + 240, cwd=tmp_path,
        env={**os.environ, "CATKIT_HOME": str(tmp_path / "unused-home")},
    )
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["requests_sent"] > 10 * SECONDS
    assert report["requests_failed"] == 0, report["errors"]
    assert proc.returncode == 0, proc.stdout[-3000:]
    auto, mme = report["endpoints"]["soak-as"], report["endpoints"]["soak-mme"]
    for ep in (auto, mme):
        assert sum(p["requests"] for p in ep["phases"].values()) == ep["requests"]
        assert ep["p50_ms"] is not None and ep["p99_ms"] >= ep["p50_ms"]
    assert set(auto["scaling"]["statuses"]) <= {"InService", "Updating"}
    assert mme["loads"] >= mme["models"] and mme["evictions"] > 0
    if SECONDS >= 60:
        assert auto["scaling"]["scale_outs"] >= 1
    if SECONDS >= 300:
        assert auto["scaling"]["scale_ins"] >= 1
        assert all(g is None or g <= 10.0 for g in report["memory_growth_pct"].values()), report
