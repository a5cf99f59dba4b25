"""``catkit local start|stop|status|reset|logs``: the local backend's command line.

``start`` daemonizes by default (logs in ``CATKIT_HOME/logs/backend.log``) and prints the URL;
``--foreground`` runs it in this terminal until Ctrl-C. ``--host`` accepts loopback only.
``reset`` forgets every resource (running: ``POST /_catkit/reset``; stopped: the state on disk).
``logs ENDPOINT`` prints the tail of each instance's model-server log
(``CATKIT_HOME/logs/instances/<endpoint>/<instance-id>.log``, what AWS sends to the CloudWatch
stream ``<variant>/<instance-id>``); ``--follow`` keeps printing what they add.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from catkit.local import lifecycle
from catkit.local.gateway import NonLoopbackHostError, check_loopback
from catkit.local.paths import catkit_home


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``catkit local ...`` to the top-level CLI."""
    local = subparsers.add_parser("local", help="run the embedded local AWS backend")
    sub = local.add_subparsers(dest="local_command", metavar="ACTION")

    start = sub.add_parser("start", help="start the backend (detached unless --foreground)")
    start.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default: a free one)")
    start.add_argument(
        "--time-scale",
        type=float,
        default=None,
        help="emulated seconds per real second (default 1; e.g. 60 = one emulated minute per second)",
    )
    start.add_argument("--home", default=None, help="state directory (default $CATKIT_HOME or ~/.catkit)")
    start.add_argument("--host", default="127.0.0.1", help="loopback address to bind (127.0.0.0/8 or ::1)")
    start.add_argument("--foreground", action="store_true", help="run in this process until Ctrl-C")
    start.set_defaults(func=_start)

    stop = sub.add_parser("stop", help="stop the backend (SIGTERM, then SIGKILL)")
    stop.add_argument("--home", default=None)
    stop.add_argument("--timeout", type=float, default=20.0, help="seconds to wait before SIGKILL")
    stop.set_defaults(func=_stop)

    reset = sub.add_parser("reset", help="forget every resource, instance and S3 object (test suites)")
    reset.add_argument("--home", default=None)
    reset.set_defaults(func=_reset)

    status = sub.add_parser("status", help="show whether the backend runs, its URL and uptime")
    status.add_argument("--home", default=None)
    status.set_defaults(func=_status)

    logs = sub.add_parser("logs", help="print the tail of an endpoint's instance logs (model servers)")
    logs.add_argument("endpoint", help="endpoint name")
    logs.add_argument("--home", default=None)
    logs.add_argument("-n", "--lines", type=int, default=40, help="lines per instance (default 40)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines until Ctrl-C")
    logs.set_defaults(func=_logs)

    local.set_defaults(func=lambda args: (local.print_help(), 2)[1])


_ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


def _logs(args: argparse.Namespace) -> int:
    if not _ENDPOINT_NAME.match(args.endpoint):
        print(f"error: {args.endpoint!r} is not an endpoint name", file=sys.stderr)
        return 2
    root = catkit_home(args.home) / "logs" / "instances" / args.endpoint
    files = sorted(root.glob("*.log"), key=lambda p: p.stat().st_mtime)
    if not files:
        print(f"no instance logs for endpoint {args.endpoint} under {root}", file=sys.stderr)
        return 1
    offsets: dict[Path, int] = {}
    for path in files:
        data = path.read_bytes()
        print(f"==> {path.stem} ({path}) <==")
        lines = data.decode(errors="replace").splitlines()
        print("\n".join(lines[-max(0, args.lines):]))
        offsets[path] = len(data)
    if not args.follow:
        return 0
    try:
        while True:
            time.sleep(0.5)
            for path in sorted(root.glob("*.log")):
                start = offsets.get(path, 0)
                if path.stat().st_size > start:
                    with open(path, "rb") as fh:
                        fh.seek(start)
                        chunk = fh.read()
                    offsets[path] = start + len(chunk)
                    for line in chunk.decode(errors="replace").splitlines():
                        print(f"{path.stem}: {line}", flush=True)
    except KeyboardInterrupt:
        return 0


def _start(args: argparse.Namespace) -> int:
    try:
        check_loopback(args.host)
    except NonLoopbackHostError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.time_scale is not None and not args.time_scale > 0:
        print(f"error: --time-scale must be > 0, got {args.time_scale}", file=sys.stderr)
        return 2
    try:
        if args.foreground:
            lifecycle.configure_logging(args.home)
            return lifecycle.run(args.home, args.port or 0, args.time_scale, args.host)
        url = lifecycle.start(args.home, args.port, args.time_scale, host=args.host)
    except lifecycle.BackendError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(url)
    return 0


def _stop(args: argparse.Namespace) -> int:
    home = catkit_home(args.home)
    if lifecycle.stop(home, timeout=args.timeout):
        print(f"stopped the catkit local backend of {home}")
    else:
        print(f"not running (home {home})")
    return 0


def _reset(args: argparse.Namespace) -> int:
    home = catkit_home(args.home)
    try:
        answer = lifecycle.reset(home)
    except OSError as exc:
        print(f"error: could not reset the backend of {home}: {exc}", file=sys.stderr)
        return 1
    if answer.get("running"):
        print(f"reset the running catkit local backend of {home}: dropped {answer.get('endpoints', 0)} endpoint(s) "
              f"in {answer.get('scopes', 0)} account/region pair(s) in {answer.get('seconds', 0):.3f} s")
    else:
        print(f"not running; deleted the state of {home}")
    return 0


def _status(args: argparse.Namespace) -> int:
    home = catkit_home(args.home)
    doc = lifecycle.status(home)
    if doc is None:
        print(f"not running (home {home})")
        print(_usage_line(home))
        return 1
    info = lifecycle.health(doc["url"]) or {}
    print(f"running   pid {doc['pid']}  {doc['url']}")
    print(f"home      {home}")
    print(f"time scale {float(doc.get('time_scale') or 1.0):g}")
    print(f"uptime    {_duration(doc.get('uptime_s') or 0.0)}")
    if info.get("now"):
        print(f"emulated  {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(info['now']))}")
    if not info:
        print("health    NOT ANSWERING (see logs/backend.log)")
    print(_usage_line(home))
    return 0


def _usage_line(home: Path) -> str:
    """``state     1.2 GiB (instances 1.1 GiB, s3 80.0 MiB, ...)``: disk used under CATKIT_HOME."""
    from catkit.local.fleet.housekeeping import state_usage

    usage = state_usage(home)
    total = usage.pop("total")
    parts = ", ".join(f"{name} {_size(n)}" for name, n in sorted(usage.items(), key=lambda kv: -kv[1]) if n)
    return f"state     {_size(total)}" + (f" ({parts})" if parts else "")


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
