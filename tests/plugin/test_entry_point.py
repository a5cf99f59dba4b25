"""The plugin is registered through the pytest11 entry point and works in a fresh pytest run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pyproject_registers_the_plugin_under_pytest11():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"catkit": "catkit.testing.pytest_plugin"}


def test_a_users_suite_gets_a_reset_backend_per_test(tmp_path):
    (tmp_path / "test_user.py").write_text(textwrap.dedent('''
        def test_first(catkit_clients):
            catkit_clients.s3.create_bucket(Bucket="left-behind")

        def test_second(catkit_clients):
            assert catkit_clients.s3.list_buckets()["Buckets"] == []
    '''))
    from importlib.metadata import entry_points

    installed = any(ep.name == "catkit" for ep in entry_points(group="pytest11"))
    load = [] if installed else ["-p", "catkit.testing.pytest_plugin"]  # a source checkout: load it by name
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *load, "-p", "no:cacheprovider",
         "--catkit-time-scale", "1", str(tmp_path)],
        capture_output=True, text=True, timeout=180, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout
