"""``catkit load ...``: load tests, calibration, simulation and scaling recommendations from a shell.

Sub-commands (see ``catkit load COMMAND --help``):

* ``run ENDPOINT --shape SPEC --duration S`` - drive an endpoint; writes one CSV row per request.
* ``locust ENDPOINT --shape SPEC --duration S --workers N`` - the same with Locust: a master and N
  worker processes here (plus ``--external-workers`` started elsewhere with
  ``locust -f $(catkit load locustfile) --worker --master-host HOST``); the same CSV and summary.
* ``locustfile`` - print the path of catkit's locustfile (for ``locust -f``).
* ``calibrate ENDPOINT`` - saturation test against a one-instance endpoint; writes the service model JSON.
* ``simulate --shape SPEC --duration S`` - offline simulation of a scaling configuration.
* ``recommend --shape SPEC --duration S --slo-ms MS`` - rank scaling settings by cost under an SLO.

Traffic ``SPEC``: shapes joined with ``+``, each ``name:key=value,...`` with the shape's
parameters, e.g. ``diurnal:low_rps=2,high_rps=20+spike:at_s=3600,duration_s=300,extra_rps=30``,
``constant:rps=5``, ``step:before_rps=1,after_rps=10,at_s=60``, ``csv:path=traffic.csv``.
Durations accept ``s``/``m``/``h``/``d`` suffixes (``7d``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from catkit.whatif import load, shapes

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``2h``, ``7d`` -> seconds."""
    t = text.strip().lower()
    mult = 1
    if t and t[-1] in _UNITS:
        mult, t = _UNITS[t[-1]], t[:-1]
    try:
        v = float(t) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (examples: 600, 15m, 2h, 7d)") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"duration must be > 0, got {text!r}")
    return v


def _number(v: str) -> Any:
    f = float(v)
    return int(f) if f.is_integer() and "." not in v else f


def parse_shape(spec: str) -> shapes.Shape:
    """A traffic shape from ``name:key=value,...+name:...`` (see the module docstring)."""
    parts: list[shapes.Shape] = []
    for piece in spec.split("+"):
        piece = piece.strip()
        if not piece:
            raise ValueError(f"empty shape in {spec!r}")
        name, _, args = piece.partition(":")
        name = name.strip().lower()
        kwargs: dict[str, Any] = {}
        for item in filter(None, (a.strip() for a in args.split(","))):
            key, eq, value = item.partition("=")
            if not eq:
                raise ValueError(f"shape argument {item!r} in {piece!r} must look like key=value")
            kwargs[key.strip()] = value.strip()
        if name == "csv":
            path = kwargs.pop("path", None)
            if not path:
                raise ValueError("csv shape needs path=FILE")
            extra = {k: (v.lower() == "true" if k == "loop" else v if k.endswith("column") else float(v))
                     for k, v in kwargs.items()}
            parts.append(shapes.Replay.from_csv(path, **extra))
            continue
        factory = shapes.SHAPES.get(name)
        if factory is None:
            raise ValueError(f"unknown shape {name!r}; use one of {', '.join([*shapes.SHAPES, 'csv'])}")
        try:
            parts.append(factory(**{k: _number(v) for k, v in kwargs.items()}))
        except TypeError as e:
            raise ValueError(f"bad arguments for shape {name!r}: {e}") from None
    return parts[0] if len(parts) == 1 else shapes.Sum(tuple(parts))


def _session(args: argparse.Namespace) -> Any:
    from catkit.session import Session

    return Session(backend=args.backend, region=args.region, home=args.home)


def _add_session_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", default="auto", choices=("auto", "local", "aws"), help="where the endpoint is")
    p.add_argument("--region", default=None)
    p.add_argument("--home", default=None, help="local backend state dir (CATKIT_HOME)")


def _add_traffic_args(p: argparse.ArgumentParser) -> None:
    """What ``run`` and ``locust`` share: endpoint, shape, duration, time scale, body, models, --out."""
    p.add_argument("endpoint")
    p.add_argument("--shape", required=True, help="traffic spec, e.g. constant:rps=5 (see catkit load --help)")
    p.add_argument("--duration", type=parse_duration, required=True, help="in the shape's time (e.g. 10m)")
    p.add_argument("--time-scale", default="auto", help="'auto' (local backend's) or a number")
    p.add_argument("--payload", help="file whose bytes are sent as the body")
    p.add_argument("--payload-text", help="body as text (default '{}')")
    p.add_argument("--content-type", default="application/json")
    p.add_argument("--target-model", action="append", help="multi-model TargetModel (repeat to cycle)")
    p.add_argument("--out", help="write the per-request results as CSV")


def _payload(args: argparse.Namespace) -> bytes:
    if args.payload:
        with open(args.payload, "rb") as f:
            return f.read()
    return args.payload_text.encode() if args.payload_text is not None else b"{}"


def _add_scaling_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--service", help="service model JSON (from `catkit load calibrate`)")
    p.add_argument("--max-rps", type=float, default=40.0, help="per-instance saturation throughput without --service")
    p.add_argument("--workers", type=int, default=4, help="parallel requests per instance without --service")
    p.add_argument("--instance-type", default="ml.m5.xlarge")
    p.add_argument("--provisioning-s", type=float, default=240.0)
    p.add_argument("--termination-s", type=float, default=60.0)


def _service(args: argparse.Namespace) -> Any:
    from catkit.whatif.calibrate import ServiceModel

    if args.service:
        return ServiceModel.load(args.service)
    return ServiceModel(max_rps=args.max_rps, workers=args.workers, instance_type=args.instance_type)


def _cmd_run(args: argparse.Namespace) -> int:
    shape = parse_shape(args.shape)
    payload = _payload(args)
    scale: Any = "auto" if args.time_scale == "auto" else float(args.time_scale)
    result = load.run_load(
        _session(args),
        args.endpoint,
        shape,
        duration_s=args.duration,
        max_requests=args.max_requests,
        time_scale=scale,
        payload=payload,
        content_type=args.content_type,
        target_models=args.target_model or None,
        max_in_flight=args.max_in_flight,
        poisson=args.poisson,
        progress=not args.quiet,
    )
    if args.out:
        result.frame.to_csv(args.out, index=False)
    print(json.dumps(result.summary(), default=str, indent=2))
    return 0 if result.ok == result.requests else 1


def _cmd_locust(args: argparse.Namespace) -> int:
    from catkit.whatif.distributed import run_locust

    payload = _payload(args)
    scale: Any = "auto" if args.time_scale == "auto" else float(args.time_scale)
    result = run_locust(
        _session(args),
        args.endpoint,
        parse_shape(args.shape),
        duration_s=args.duration,
        workers=args.workers,
        external_workers=args.external_workers,
        bind_host=args.bind_host,
        master_port=args.master_port,
        time_scale=scale,
        per_user_rps=args.per_user_rps,
        payload=payload,
        content_type=args.content_type,
        target_models=args.target_model or None,
        log_dir=args.log_dir,
    )
    if args.out:
        result.frame.to_csv(args.out, index=False)
    print(json.dumps({**result.summary(), "workers": result.meta["workers"], "logs": result.meta["log_dir"]},
                     default=str, indent=2))
    return 0 if result.requests and result.ok == result.requests else 1


def _cmd_locustfile(args: argparse.Namespace) -> int:
    from catkit.whatif.distributed import locustfile_path

    print(locustfile_path())
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from catkit.whatif.calibrate import calibrate

    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    payload = _payload(args)
    model = calibrate(_session(args), args.endpoint, levels=levels, seconds_per_level=args.seconds,
                      payload=payload, content_type=args.content_type, progress=not args.quiet)
    if args.out:
        model.save(args.out)
    print(json.dumps(model.to_dict(), indent=2))
    return 0


def _config(args: argparse.Namespace) -> Any:
    from catkit.autoscaling.config import NightSchedule, ScalingConfig

    night = NightSchedule(night_min=args.night_min) if args.night_min else None
    return ScalingConfig(
        min_capacity=args.min, max_capacity=args.max, target_value=args.target, metric=args.metric,
        scale_out_cooldown=args.scale_out_cooldown, scale_in_cooldown=args.scale_in_cooldown, night=night,
    )


def _cmd_simulate(args: argparse.Namespace) -> int:
    from catkit.whatif.simulate import simulate

    res = simulate(parse_shape(args.shape), _config(args), _service(args), duration_s=args.duration,
                   provisioning_s=args.provisioning_s, termination_s=args.termination_s,
                   instance_type=args.instance_type)
    if args.out:
        res.frame(args.resolution).to_csv(args.out)
    print(json.dumps(res.summary(args.slo_ms), default=str, indent=2))
    return 0


def _cmd_recommend(args: argparse.Namespace) -> int:
    from catkit.autoscaling.config import SEED_CONFIG
    from catkit.whatif.recommend import recommend_scaling

    rec = recommend_scaling(parse_shape(args.shape), _service(args), args.slo_ms, duration_s=args.duration,
                            max_capacity=args.max, baseline=SEED_CONFIG, provisioning_s=args.provisioning_s,
                            termination_s=args.termination_s, progress=not args.quiet)
    if args.out:
        rec.table.to_csv(args.out, index=False)
    with_cols = ["rank", "metric", "target_value", "min_capacity", "scale_out_cooldown", "scale_in_cooldown",
                 "night_min", "cost_per_day_usd", "slow_fraction", "p99_ms"]
    print(rec.table[with_cols].head(args.top).to_string(index=False))
    if rec.best is None:
        print("no setting met the SLO", file=sys.stderr)
        return 1
    print("\nput_scaling_policy arguments:")
    print(json.dumps(rec.put_scaling_policy_args(args.endpoint), indent=2))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "load",
        help="load tests, calibration, simulation, scaling recommendations",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="load_command", metavar="COMMAND", required=True)

    run = sub.add_parser("run", help="drive an endpoint with a traffic shape")
    _add_traffic_args(run)
    run.add_argument("--max-requests", type=int, default=None)
    run.add_argument("--max-in-flight", type=int, default=256)
    run.add_argument("--poisson", action="store_true", help="Poisson arrivals instead of evenly spaced")
    run.add_argument("--quiet", action="store_true")
    _add_session_args(run)
    run.set_defaults(func=_cmd_run)

    lo = sub.add_parser("locust", help="drive an endpoint with a traffic shape from Locust master + workers")
    _add_traffic_args(lo)
    lo.add_argument("--workers", type=int, default=2, help="worker processes to start on this machine")
    lo.add_argument("--external-workers", type=int, default=0,
                    help="workers started on other machines that the master waits for")
    lo.add_argument("--bind-host", default="127.0.0.1",
                    help="where the master listens for workers (another address only for workers elsewhere)")
    lo.add_argument("--master-port", type=int, default=None, help="default: a free port")
    lo.add_argument("--per-user-rps", type=float, default=1.0,
                    help="requests per second per Locust user (keep below 1 / latency)")
    lo.add_argument("--log-dir", help="Locust's logs and the raw rows (default: a temporary directory)")
    _add_session_args(lo)
    lo.set_defaults(func=_cmd_locust)

    lf = sub.add_parser("locustfile", help="print the path of catkit's locustfile (for locust -f)")
    lf.set_defaults(func=_cmd_locustfile)

    cal = sub.add_parser("calibrate", help="saturation test against a one-instance endpoint")
    cal.add_argument("endpoint")
    cal.add_argument("--levels", default="1,2,4,8,16,32", help="concurrency levels, comma separated")
    cal.add_argument("--seconds", type=float, default=5.0, help="real seconds per level")
    cal.add_argument("--payload")
    cal.add_argument("--payload-text")
    cal.add_argument("--content-type", default="application/json")
    cal.add_argument("--out", help="write the service model JSON here")
    cal.add_argument("--quiet", action="store_true")
    _add_session_args(cal)
    cal.set_defaults(func=_cmd_calibrate)

    for name, helptext, func in (
        ("simulate", "simulate a scaling configuration offline", _cmd_simulate),
        ("recommend", "rank scaling settings by cost under a p99 SLO", _cmd_recommend),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--shape", required=True)
        p.add_argument("--duration", type=parse_duration, required=True)
        p.add_argument("--slo-ms", type=float, default=None if name == "simulate" else 250.0)
        p.add_argument("--max", type=int, default=10, help="MaxCapacity")
        p.add_argument("--out", help="write the per-minute frame / the table as CSV")
        _add_scaling_args(p)
        if name == "simulate":
            p.add_argument("--min", type=int, default=2)
            p.add_argument("--target", type=float, default=1000.0)
            p.add_argument("--metric", default="invocations", choices=("invocations", "high_resolution"))
            p.add_argument("--scale-out-cooldown", type=int, default=60)
            p.add_argument("--scale-in-cooldown", type=int, default=300)
            p.add_argument("--night-min", type=int, default=None, help="add a night schedule with this min")
            p.add_argument("--resolution", type=int, default=60, help="seconds per row of --out")
        else:
            p.add_argument("--endpoint", default="my-endpoint", help="endpoint name for the emitted arguments")
            p.add_argument("--top", type=int, default=10)
            p.add_argument("--quiet", action="store_true")
        p.set_defaults(func=func)
