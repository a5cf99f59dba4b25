"""What instance processes and files leave behind, and cleaning it up.

- The registry of live model-server process groups: an ``atexit`` hook SIGKILLs whatever is still
  registered when the backend's interpreter exits, and :func:`die_with_parent` (run in the child
  between fork and exec) asks Linux to SIGKILL the server when the backend dies (``PR_SET_PDEATHSIG``).
- :func:`sweep_orphans`: at start-up, before any instance is launched, every directory under
  ``CATKIT_HOME/instances`` belongs to a previous run (instances get fresh ids at every launch), so a
  backend killed with SIGKILL does not leave its unpacked models on disk until the endpoint is
  deleted. A model server from that run that is somehow still alive (no PDEATHSIG outside Linux) and
  started from that directory is killed first. Instance logs of endpoints that no longer exist go too.
- :func:`rotate_log`: an instance log over its size cap is copied to ``<name>.log.1`` (one
  generation kept) and truncated in place (the model server keeps writing to it: its stdout was
  opened with O_APPEND, so it continues at the new end). The fleet's health round calls it, so a
  chatty model cannot fill the disk; lines written between the copy and the truncation are lost.
- :func:`state_usage`: bytes used under ``CATKIT_HOME`` per top-level part (``catkit local status``).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
from collections.abc import Iterable
from pathlib import Path

import psutil

log = logging.getLogger("catkit.local.fleet.housekeeping")

#: pid -> instance id of every model-server process group the backend started and has not reaped.
LIVE: dict[int, str] = {}
#: Default size cap of one instance log file (``CATKIT_INSTANCE_LOG_MB``); one rotated generation is kept.
DEFAULT_LOG_CAP_BYTES = 10 * 2**20


def kill_live() -> None:
    """SIGKILL every registered process group (the backend's interpreter is exiting)."""
    for pid in list(LIVE):
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        LIVE.pop(pid, None)


atexit.register(kill_live)


def die_with_parent() -> None:  # runs in the child between fork and exec
    """Ask the kernel to SIGKILL this process when its parent (the backend) dies (Linux)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _kill_server_of(instance_dir: Path) -> None:
    """SIGKILL the model server started from ``instance_dir`` if it still runs (its ready file names
    the pid; the command line must name the directory, so a recycled pid is left alone)."""
    try:
        pid = int(json.loads((instance_dir / "ready.json").read_text())["pid"])
        proc = psutil.Process(pid)
        if str(instance_dir) not in " ".join(proc.cmdline()):
            return
        proc.kill()
        proc.wait(5)
    except (OSError, ValueError, KeyError, TypeError, psutil.Error):
        return


def sweep_orphans(home: Path, live_endpoints: Iterable[str]) -> dict[str, int]:
    """Remove what a previous run left under ``home`` (see the module docstring): every instance
    directory, and the instance logs of endpoints not in ``live_endpoints``. Returns counts."""
    removed = {"instance_dirs": 0, "bytes": 0, "log_dirs": 0}
    root = home / "instances"
    for ep_dir in sorted(root.iterdir()) if root.is_dir() else []:
        children = sorted(ep_dir.iterdir()) if ep_dir.is_dir() and not ep_dir.is_symlink() else []
        for inst_dir in children:
            if inst_dir.is_dir() and not inst_dir.is_symlink():
                _kill_server_of(inst_dir)
                removed["bytes"] += tree_bytes(inst_dir)
                shutil.rmtree(inst_dir, ignore_errors=True)
            else:
                inst_dir.unlink(missing_ok=True)
            removed["instance_dirs"] += 1
        shutil.rmtree(ep_dir, ignore_errors=True)
    keep = set(live_endpoints)
    logs = home / "logs" / "instances"
    for ep_logs in sorted(logs.iterdir()) if logs.is_dir() else []:
        if ep_logs.name not in keep:
            shutil.rmtree(ep_logs, ignore_errors=True)
            removed["log_dirs"] += 1
    if removed["instance_dirs"] or removed["log_dirs"]:
        log.warning("start-up sweep: removed %d instance directories (%.1f MiB) and the logs of %d deleted "
                    "endpoints left by a previous run", removed["instance_dirs"], removed["bytes"] / 2**20,
                    removed["log_dirs"])
    return removed


def rotate_log(path: Path, cap_bytes: int) -> bool:
    """Copy ``path`` to ``<path>.1`` (replacing an older one) and truncate it, if it is larger than
    ``cap_bytes``; True if it did."""
    try:
        if path.stat().st_size <= cap_bytes:
            return False
        shutil.copyfile(path, path.with_name(path.name + ".1"))
        os.truncate(path, 0)
    except OSError:
        return False
    return True


def tree_bytes(path: Path) -> int:
    """Bytes of the regular files under ``path`` (allocated blocks: sparse files count what they use)."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(dirpath, name))
                total += min(st.st_size, st.st_blocks * 512) if hasattr(st, "st_blocks") else st.st_size
    return total


def state_usage(home: Path) -> dict[str, int]:
    """Bytes used under ``home`` per top-level entry (``s3``, ``instances``, ``logs``, ...), plus
    ``"total"``."""
    usage: dict[str, int] = {}
    for entry in sorted(home.iterdir()) if home.is_dir() else []:
        with contextlib.suppress(OSError):
            usage[entry.name] = tree_bytes(entry) if entry.is_dir() and not entry.is_symlink() \
                else entry.lstat().st_size
    usage["total"] = sum(usage.values())
    return usage


__all__ = ["DEFAULT_LOG_CAP_BYTES", "LIVE", "die_with_parent", "kill_live", "rotate_log", "state_usage",
           "sweep_orphans", "tree_bytes"]
