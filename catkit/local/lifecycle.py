"""Running the local backend as a process: start (daemon or foreground), stop, status.

One backend per ``CATKIT_HOME``: the running backend holds an exclusive ``fcntl`` lock on
``CATKIT_HOME/backend.lock`` for its whole life and publishes ``CATKIT_HOME/backend.json``
(``{"pid", "port", "url", "time_scale", "started", "home", "host"}``). A ``backend.json`` whose lock
is free (its process died, even by kill -9) is stale and removed. :func:`start` spawns
``python -m catkit.local.lifecycle run ...`` detached (logs to ``CATKIT_HOME/logs/backend.log``, requests to ``logs/access.log``) and
waits until ``/_catkit/health`` answers; :func:`stop` sends SIGTERM, waits, then SIGKILL.
Without ``--port``, a backend reuses its home's previous port when free (``CATKIT_HOME/last_port``),
so a notebook's ``AWS_ENDPOINT_URL`` survives ``catkit local stop`` / ``start``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from catkit.local.gateway import check_loopback
from catkit.local.paths import catkit_home, ensure_private_dir

log = logging.getLogger("catkit.local.lifecycle")

STATE_FILE = "backend.json"
LOCK_FILE = "backend.lock"
LAST_PORT_FILE = "last_port"
EXIT_LOCKED = 3  # `run` exit code: another backend holds this home's lock
LOG_FILE = Path("logs") / "backend.log"
DEFAULT_START_TIMEOUT_S = 60.0


class BackendError(RuntimeError):
    """A lifecycle problem the user must act on; the message says what to do."""


# -- the lock and the state file -------------------------------------------------------------
def _lock_path(home: Path) -> Path:
    return home / LOCK_FILE


def _try_lock(home: Path) -> int | None:
    """Open and exclusively lock ``backend.lock``; the fd, or None if someone else holds it."""
    fd = os.open(_lock_path(home), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _lock_is_held(home: Path) -> bool:
    if not _lock_path(home).exists():
        return False
    fd = _try_lock(home)
    if fd is None:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_state(home: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """The raw ``backend.json`` of ``home``, or None."""
    path = catkit_home(home) / STATE_FILE
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _write_state(home: Path, doc: dict[str, Any]) -> None:
    path = home / STATE_FILE
    tmp = path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _remove_state(home: Path, pid: int | None = None) -> None:
    path = home / STATE_FILE
    if pid is not None:
        doc = read_state(home)
        if doc is not None and doc.get("pid") != pid:
            return  # another backend's file
    path.unlink(missing_ok=True)


def status(home: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """The running backend of ``home`` (``backend.json`` plus ``uptime_s``), or None.

    A stale ``backend.json`` (lock free or pid dead) is removed.
    """
    root = catkit_home(home)
    doc = read_state(root)
    held = _lock_is_held(root)
    if doc is None:
        return None
    pid = int(doc.get("pid") or 0)
    if not held or not pid or not _pid_alive(pid):
        log.info("removing stale %s (pid %s is not running)", root / STATE_FILE, pid)
        _remove_state(root)
        return None
    out = dict(doc)
    out["uptime_s"] = max(0.0, time.time() - float(doc.get("started") or time.time()))
    return out


_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never proxied


def health(url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """``/_catkit/info`` of the backend at ``url`` if it answers ``/_catkit/health``, else None."""
    try:
        with _NO_PROXY_OPENER.open(url.rstrip("/") + "/_catkit/health", timeout=timeout) as resp:
            if resp.status != 200:
                return None
        with _NO_PROXY_OPENER.open(url.rstrip("/") + "/_catkit/info", timeout=timeout) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


# -- start / stop ------------------------------------------------------------------------------
def _check_matches(doc: dict[str, Any], port: int | None, time_scale: float | None, home: Path) -> None:
    running_scale = float(doc.get("time_scale") or 1.0)
    if time_scale is not None and abs(float(time_scale) - running_scale) > 1e-9:
        raise BackendError(
            f"The catkit local backend for {home} is already running at {doc.get('url')} with "
            f"time_scale={running_scale:g}, but time_scale={float(time_scale):g} was requested. "
            f"Restart it: `catkit local stop --home {home}` then "
            f"`catkit local start --home {home} --time-scale {float(time_scale):g}` "
            "(or omit time_scale to use the running one)."
        )
    if port and int(port) != int(doc.get("port") or 0):
        raise BackendError(
            f"The catkit local backend for {home} is already running at {doc.get('url')} (port "
            f"{doc.get('port')}), not on the requested port {port}. Use that URL, or restart it: "
            f"`catkit local stop --home {home}` then `catkit local start --home {home} --port {port}`."
        )


def _log_tail(home: Path, lines: int = 30) -> str:
    try:
        text = (home / LOG_FILE).read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def start(
    home: str | os.PathLike[str] | None = None,
    port: int | None = None,
    time_scale: float | None = None,
    *,
    host: str = "127.0.0.1",
    timeout: float = DEFAULT_START_TIMEOUT_S,
    components: tuple[str, ...] | list[str] | None = None,
) -> str:
    """Start the backend of ``home`` detached (idempotent); returns its URL.

    If one is already running it is reused, unless it runs with another ``time_scale`` or
    ``port`` than requested, which raises :class:`BackendError` saying how to restart.
    ``components`` overrides ``backend.COMPONENTS`` for a new backend (tests).
    """
    host = check_loopback(host)
    root = ensure_private_dir(catkit_home(home))
    running = status(root)
    if running is not None:
        _check_matches(running, port, time_scale, root)
        if health(running["url"]) is not None:
            return str(running["url"])
        # The process holds the lock but doesn't answer (still starting?): wait for it below.
        return _wait_ready(root, int(running["pid"]), None, timeout, port, time_scale)
    log_path = root / LOG_FILE
    ensure_private_dir(log_path.parent)
    cmd = [sys.executable, "-m", "catkit.local.lifecycle", "run", "--home", str(root), "--host", host]
    if port:
        cmd += ["--port", str(int(port))]
    if time_scale is not None:
        cmd += ["--time-scale", repr(float(time_scale))]
    if components is not None:
        cmd += ["--components", ",".join(components)]
    env = dict(os.environ)
    env["CATKIT_HOME"] = str(root)
    env.setdefault("PYTHONUNBUFFERED", "1")
    # The daemon runs in its home (so it pins no caller directory); make sure it imports this catkit.
    source_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source_root, env.get("PYTHONPATH", "")) if p)

    def spawn() -> subprocess.Popen[bytes]:
        with open(log_path, "ab") as logf:
            os.chmod(log_path, 0o600)
            return subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                env=env,
                cwd=str(root),
            )

    child = spawn()
    return _wait_ready(root, child.pid, child, timeout, port, time_scale, respawn=spawn)


def _wait_ready(
    root: Path,
    pid: int | None,
    child: subprocess.Popen[bytes] | None,
    timeout: float,
    port: int | None,
    time_scale: float | None,
    respawn: Callable[[], subprocess.Popen[bytes]] | None = None,
) -> str:
    deadline = time.monotonic() + timeout
    respawns = 3
    while time.monotonic() < deadline:
        doc = read_state(root)
        if doc is not None and _pid_alive(int(doc.get("pid") or 0)):
            if doc.get("pid") != pid:
                # Another start won the lock; use that backend if it matches what we asked for.
                _check_matches(doc, port, time_scale, root)
            if health(doc["url"], timeout=1.0) is not None:
                return str(doc["url"])
        if child is None and doc is None and respawn is not None and respawns > 0 and not _lock_is_held(root):
            # We lost the lock to a backend that has gone away since (e.g. one that was stopping).
            respawns -= 1
            child = respawn()
            pid = child.pid
            continue
        if child is not None and child.poll() is not None:
            if child.returncode == EXIT_LOCKED or _lock_is_held(root):
                child, pid = None, None  # lost the race to a concurrent start; wait for the winner
                continue
            raise BackendError(
                f"The catkit local backend exited during start-up (exit code {child.returncode}). "
                f"Last lines of {root / LOG_FILE}:\n{_log_tail(root)}"
            )
        time.sleep(0.05)
    raise BackendError(
        f"The catkit local backend (pid {pid or '?'}) did not answer /_catkit/health within {timeout:g} s. "
        f"See {root / LOG_FILE}; stop it with `catkit local stop --home {root}`.\n{_log_tail(root)}"
    )


def stop(home: str | os.PathLike[str] | None = None, timeout: float = 20.0) -> bool:
    """Stop the backend of ``home``: SIGTERM, wait up to ``timeout`` s, then SIGKILL.

    Returns False if none was running.
    """
    root = catkit_home(home)
    doc = status(root)
    if doc is None:
        return False
    pid = int(doc["pid"])
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _pid_alive(pid) and _lock_is_held(root):
        _reap(pid)
        time.sleep(0.05)
    if _pid_alive(pid) and _lock_is_held(root):
        log.warning("backend pid %s did not stop within %g s; sending SIGKILL", pid, timeout)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        kill_deadline = time.monotonic() + 10
        while time.monotonic() < kill_deadline and _lock_is_held(root):
            _reap(pid)
            time.sleep(0.05)
    _reap(pid)
    _remove_state(root, pid)
    return True


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is our child (start() in this process), so it doesn't linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


# -- the backend process itself -----------------------------------------------------------------
def run_event_loop(main: Any) -> Any:
    """Run coroutine ``main`` on uvloop when it is installed (a core dependency where it builds:
    its C event loop takes ~20% off the gateway's CPU per InvokeEndpoint, benchmarks/gateway.py),
    else on asyncio's own loop; ``CATKIT_EVENT_LOOP=asyncio`` chooses asyncio's loop."""
    if os.environ.get("CATKIT_EVENT_LOOP", "").lower() != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run(main)
    return asyncio.run(main)


def run(
    home: str | os.PathLike[str] | None = None,
    port: int = 0,
    time_scale: float | None = None,
    host: str = "127.0.0.1",
    components: tuple[str, ...] | None = None,
) -> int:
    """Run the backend in this process until SIGTERM/SIGINT (the ``--foreground`` mode).

    Sets the process umask to 077: everything the backend and its instances create under
    ``CATKIT_HOME`` (state, S3 data, logs, instance directories) is owner-only."""
    os.umask(0o077)
    host = check_loopback(host)
    root = ensure_private_dir(catkit_home(home))
    fd = _try_lock(root)
    if fd is None:
        doc = read_state(root) or {}
        raise BackendError(
            f"Another catkit local backend is already running for {root} "
            f"(pid {doc.get('pid', '?')}, {doc.get('url', 'starting')}). "
            f"Use it, or stop it with `catkit local stop --home {root}`."
        )
    try:
        _remove_state(root)  # we hold the lock, so any existing file is stale
        return run_event_loop(_serve(root, port, time_scale, host, components))
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


async def _serve(
    root: Path, port: int, time_scale: float | None, host: str, components: tuple[str, ...] | None
) -> int:
    from catkit.local.backend import Backend

    if not port:
        port = _reusable_last_port(root, host)
    backend = Backend(
        root,
        port=port or 0,
        time_scale=time_scale or 1.0,
        host=host,
        components=components if components is not None else components_from_env(),
    )
    stop_event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_event.set)
    try:
        url = await backend.start()
    except BaseException:
        await backend.stop()
        raise
    started = backend.started_at or time.time()
    _write_last_port(root, backend.port)
    _write_state(
        root,
        {
            "pid": os.getpid(),
            "port": backend.port,
            "url": url,
            "host": host,
            "time_scale": backend.time_scale,
            "started": started,
            "home": str(root),
        },
    )
    print(f"catkit local backend running at {url} (home {root}, pid {os.getpid()})", flush=True)
    try:
        await stop_event.wait()
    finally:
        _remove_state(root, os.getpid())
        await backend.stop()
    return 0


def attached(home: str | os.PathLike[str] | None = None, port: int | None = None,
             time_scale: float | None = None) -> str | None:
    """The catkit backend ``AWS_ENDPOINT_URL`` already points at (a test suite's, a notebook's),
    when no ``home`` or ``port`` is asked for and it is ``$CATKIT_HOME``'s (if that is set); else
    None. :class:`BackendError` if it runs with another ``time_scale`` than asked for."""
    env_url = (os.environ.get("AWS_ENDPOINT_URL") or "").rstrip("/")
    if not env_url or home is not None or port is not None or not _is_loopback_url(env_url):
        return None
    info = health(env_url, timeout=1.0)
    wanted_home = os.environ.get("CATKIT_HOME")
    if info is None or (wanted_home and Path(wanted_home).resolve() != Path(info.get("home", "")).resolve()):
        return None
    _check_matches({"url": env_url, "time_scale": info.get("time_scale")}, None, time_scale,
                   Path(info.get("home", "?")))
    return env_url


def start_announced(home: str | os.PathLike[str] | None = None, port: int | None = None,
                    time_scale: float | None = None) -> str:
    """:func:`start`, saying where when it had to start one (and what ``AWS_ENDPOINT_URL`` pointed
    at before, if that was something else): on stderr, or on stdout in a Jupyter kernel, where a
    stderr line is drawn like an error."""
    root = catkit_home(home)
    was_running = status(root) is not None
    url = start(home, port, time_scale)
    if not was_running:
        env_url = (os.environ.get("AWS_ENDPOINT_URL") or "").rstrip("/")
        note = f"; AWS_ENDPOINT_URL was {env_url}, which is not a running catkit backend" if (
            env_url and env_url != url) else ""
        in_kernel = type(sys.stdout).__module__.startswith("ipykernel")
        print(f"catkit: started the local backend at {url} (home {root}){note}",
              file=sys.stdout if in_kernel else sys.stderr, flush=True)
    return url


def _is_loopback_url(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def reset(home: str | os.PathLike[str] | None = None, timeout: float = 30.0) -> dict[str, Any]:
    """Forget every resource of ``home``'s backend: ``POST /_catkit/reset`` when it runs (instances
    killed, state dropped, the process keeps its port), else delete its state, S3 objects and
    instance directories on disk (logs stay)."""
    root = catkit_home(home)
    running = status(root)
    if running is not None:
        request = urllib.request.Request(str(running["url"]).rstrip("/") + "/_catkit/reset", data=b"",
                                         method="POST")
        with _NO_PROXY_OPENER.open(request, timeout=timeout) as resp:
            return {**json.loads(resp.read()), "running": True}
    removed = 0
    for name in ("state.sqlite", "state.sqlite-wal", "state.sqlite-shm"):
        with contextlib.suppress(FileNotFoundError):
            (root / name).unlink()
            removed += 1
    for name in ("s3", "instances", "scopes"):
        if (root / name).exists():
            shutil.rmtree(root / name, ignore_errors=True)
            removed += 1
    return {"status": "ok", "running": False, "removed": removed}


def _reusable_last_port(root: Path, host: str) -> int:
    """The port this home's backend used last time if it is free now (so notebooks' saved
    ``AWS_ENDPOINT_URL`` keeps working across stop/start), else 0 (any free port)."""
    try:
        last = int((root / LAST_PORT_FILE).read_text().strip())
    except (FileNotFoundError, ValueError):
        return 0
    if not 0 < last < 65536:
        return 0
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, last))
        except OSError:
            return 0
    return last


def _write_last_port(root: Path, port: int) -> None:
    with contextlib.suppress(OSError):
        (root / LAST_PORT_FILE).write_text(f"{port}\n")


def components_from_env() -> tuple[str, ...] | None:
    """``CATKIT_LOCAL_COMPONENTS`` (comma-separated module names; empty = none) or None = all.

    A test/debug knob: e.g. gateway tests run without the endpoint/autoscaling components.
    """
    raw = os.environ.get("CATKIT_LOCAL_COMPONENTS")
    if raw is None:
        return None
    return tuple(name.strip() for name in raw.split(",") if name.strip())


def configure_logging(home: str | os.PathLike[str] | None = None) -> None:
    """Backend process logging: stderr (``logs/backend.log`` when daemonized) at
    ``$CATKIT_LOG_LEVEL`` (INFO), and the per-request access log in ``logs/access.log``
    (rotated at 20 MB, 3 files kept; ``CATKIT_ACCESS_LOG=0`` turns it off)."""
    level = os.environ.get("CATKIT_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    access = logging.getLogger("catkit.local.access")
    access.propagate = False
    if os.environ.get("CATKIT_ACCESS_LOG", "1").lower() in ("0", "false", "no", "off"):
        access.setLevel(logging.WARNING)
        return
    from catkit.local import access_log

    logs = ensure_private_dir(catkit_home(home) / "logs")
    access_log.configure(logs / "access.log", max_bytes=20 * 1024 * 1024, backups=3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m catkit.local.lifecycle")
    sub = parser.add_subparsers(dest="cmd", required=True)
    run_p = sub.add_parser("run", help="run the backend in the foreground")
    run_p.add_argument("--home", default=None)
    run_p.add_argument("--port", type=int, default=0)
    run_p.add_argument("--time-scale", type=float, default=None)
    run_p.add_argument("--host", default="127.0.0.1")
    run_p.add_argument("--components", default=None, help="comma-separated component modules ('' = none)")
    args = parser.parse_args(argv)
    os.umask(0o077)  # before the log files are opened; see run()
    configure_logging(args.home)
    try:
        components = None
        if args.components is not None:
            components = tuple(n.strip() for n in args.components.split(",") if n.strip())
        return run(args.home, args.port, args.time_scale, args.host, components)
    except BackendError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise
        print(
            f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}. "
            "Choose another --port, or omit it to get a free one.",
            file=sys.stderr,
        )
        return 4


if __name__ == "__main__":
    sys.exit(main())
