"""The gateway's buffered access log (catkit.local.access_log): lines reach the file on flush or
within the flush interval on an event loop, rotation keeps the size cap, the level switch works."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from catkit.local import access_log
from catkit.testing import wait_until_async


@pytest.fixture
def log_path(tmp_path: Path):
    path = tmp_path / "access.log"
    yield path
    access_log.configure(None)
    logging.getLogger("catkit.local.access").setLevel(logging.NOTSET)


def test_lines_are_buffered_until_flush_and_stamped(log_path: Path) -> None:
    access_log.configure(log_path)
    assert access_log.enabled()
    access_log.write('127.0.0.1 "GET /x" s3 GetObject 200 0.4ms')  # off a loop: written at once
    text = log_path.read_text()
    assert text.endswith('127.0.0.1 "GET /x" s3 GetObject 200 0.4ms\n')
    stamp = text.split(" 127.0.0.1")[0]
    assert len(stamp) == len("2026-11-30 07:19:53,123") and stamp[10] == " " and stamp[19] == ","


def test_on_an_event_loop_lines_arrive_within_the_flush_interval(log_path: Path) -> None:
    access_log.configure(log_path)

    async def main() -> None:
        for i in range(100):
            access_log.write(f"line {i}")
        assert log_path.read_text() == ""  # one append each, nothing written yet
        await wait_until_async(lambda: log_path.read_text().count("\n") == 100, timeout=10)

    asyncio.run(main())
    assert [ln.split(" ", 2)[2] for ln in log_path.read_text().splitlines()] == [f"line {i}" for i in range(100)]


def test_rotation_keeps_the_size_cap(log_path: Path) -> None:
    access_log.configure(log_path, max_bytes=2000, backups=2)
    for i in range(60):
        access_log.write(f"request {i:03d} " + "x" * 40)  # ~70 bytes a line, written one by one
    files = sorted(p.name for p in log_path.parent.iterdir())
    assert files == ["access.log", "access.log.1", "access.log.2"]
    assert all(p.stat().st_size <= 2000 for p in log_path.parent.iterdir())
    assert "request 059" in log_path.read_text()


def test_turned_off_by_the_logger_level(log_path: Path) -> None:
    access_log.configure(log_path)
    logging.getLogger("catkit.local.access").setLevel(logging.WARNING)  # CATKIT_ACCESS_LOG=0
    assert not access_log.enabled()
