"""The model server: SageMaker's container HTTP contract on aiohttp, one process per instance.

``python -m catkit.serving.server MODEL --port P [--host 127.0.0.1] [--ready-file F]
[--multi-model] [--memory-budget-mb N] [--model-timeout S] [--workers N] [--container KIND]
[--code-dir DIR] [--pipeline SPEC] [--auth-token-file F]``

``--container`` serves the model the way that AWS container does (:mod:`catkit.serving.frameworks`;
the local backend passes the kind it read from the image URI); ``--pipeline`` loads the containers
of a multi-container model (:mod:`catkit.serving.pipeline`) instead of MODEL.

Routes: ``GET /ping`` (200 once the model is loaded), ``POST /invocations``, and for multi-model
servers ``POST /models``, ``GET /models``, ``GET|DELETE /models/{name}``,
``POST /models/{name}/invoke``. Handler code runs on a :class:`~catkit.serving.workers.WorkerPool`
so ``/ping`` answers while predictions run. Binds loopback addresses only. With
``--auth-token-file`` every route answers only requests carrying that token
(:mod:`catkit.serving.auth`: how the local backend keeps instances reachable through its gateway only).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from catkit.serving.auth import read_token_file, token_middleware
from catkit.serving.errors import (
    BadRequest,
    ModelLoadError,
    ModelNotFound,
    ModelTimeout,
    PayloadTooLarge,
    RequestTimeout,
    ServingError,
    is_unsupported_content_type,
)
from catkit.serving.handler import ModelHandler
from catkit.serving.http_limits import BodyTimeout, HttpLimits, LimitedSite, Tracker, read_limited
from catkit.serving.multimodel import ModelRegistry
from catkit.serving.pipeline import ContainerFailed, Pipeline, read_spec
from catkit.serving.workers import CallTimeout, WorkerPool, run_in_daemon_thread

log = logging.getLogger("catkit.serving.server")

MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker real-time payload limit (aws-facts §3)
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
TARGET_MODEL = "X-Amzn-SageMaker-Target-Model"
TARGET_CONTAINER = "X-Amzn-SageMaker-Target-Container-Hostname"
CONTAINER_HEADER = "X-Catkit-Container"  # names the pipeline container that failed
INFERENCE_ID = "X-Amzn-SageMaker-Inference-Id"
LATENCY_HEADER = "X-Catkit-Model-Latency-Us"
DEFAULT_DRAIN_SECONDS = 30.0  # SageMaker sends SIGKILL 30 s after SIGTERM
_TEXT = "text/plain; charset=utf-8"


class NonLoopbackHost(ValueError):
    """The requested bind address is not a loopback address."""


def check_loopback(host: str) -> str:
    """Return ``host`` if it is loopback (127.0.0.0/8, ::1, localhost); else raise NonLoopbackHost."""
    if host.strip().lower() == "localhost":
        return host
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise NonLoopbackHost(
            f"Refusing to bind {host!r}: the catkit model server listens on loopback only "
            "(127.0.0.0/8, ::1 or localhost). Use --host 127.0.0.1."
        )
    return host


def default_workers() -> int:
    """``SAGEMAKER_MODEL_SERVER_WORKERS`` if set (at most max(4, CPUs): one thread per request in
    flight, so 1000 would start 1000 threads), else min(4, max(2, CPUs))."""
    raw = os.environ.get("SAGEMAKER_MODEL_SERVER_WORKERS")
    if raw:
        try:
            return max(1, min(int(raw), max(4, os.cpu_count() or 1)))
        except ValueError:
            log.warning("ignoring SAGEMAKER_MODEL_SERVER_WORKERS=%r (not an integer)", raw)
    return min(4, max(2, os.cpu_count() or 1))


def default_model_timeout() -> float | None:
    """``SAGEMAKER_MODEL_SERVER_TIMEOUT`` seconds if set, else no server-side timeout."""
    raw = os.environ.get("SAGEMAKER_MODEL_SERVER_TIMEOUT")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        log.warning("ignoring SAGEMAKER_MODEL_SERVER_TIMEOUT=%r (not a number)", raw)
        return None
    return value if value > 0 else None


@dataclass
class ServerConfig:
    """Everything the server needs; ``model`` None means a multi-model server."""

    model: str | None = None
    multi_model: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    ready_file: str | None = None
    memory_budget_mb: float | None = None
    model_timeout: float | None = None
    workers: int = 2
    models_root: str | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    drain_seconds: float = DEFAULT_DRAIN_SECONDS
    container: str | None = None  # an AWS container kind to emulate (catkit.serving.containers)
    code_dir: str | None = None
    pipeline: str | None = None  # a pipeline spec file (catkit.serving.pipeline)
    auth_token_file: str | None = None  # answer only requests carrying this token (catkit.serving.auth)
    unix_socket: str | None = None  # also listen here (catkit.serving.unix_socket; the backend's instances)
    header_timeout: float = 30.0  # > the gateway's keep-alive pool idle time (15 s; catkit.serving.http_limits)
    max_connections: int = 256
    body_timeout: float = 30.0  # plus 1 s per 256 KiB received (catkit.serving.http_limits.read_limited)

    def __post_init__(self) -> None:
        check_loopback(self.host)
        if self.pipeline is not None:
            if self.model is not None or self.multi_model:
                raise ValueError("--pipeline replaces MODEL and --multi-model")
            if not Path(self.pipeline).is_file():
                raise ValueError(f"--pipeline {self.pipeline} is not a file")
            return self._check_numbers()
        if self.container is not None:
            from catkit.serving.containers import KINDS

            if self.container not in KINDS:
                raise ValueError(f"--container must be one of {', '.join(KINDS)}, got {self.container!r}")
        if self.model is None:
            self.multi_model = True
        elif self.multi_model:
            raise ValueError(
                "MODEL and --multi-model are exclusive: a multi-model server starts empty and "
                "loads models with POST /models."
            )
        self._check_numbers()

    def _check_numbers(self) -> None:
        if self.auth_token_file is not None:
            read_token_file(self.auth_token_file)  # ValueError now rather than at startup
        if self.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {self.workers}")
        if self.header_timeout <= 0 or self.body_timeout <= 0 or self.max_connections < 1:
            raise ValueError("--header-timeout and --body-timeout must be > 0, --max-connections >= 1")
        if self.model_timeout is not None and self.model_timeout <= 0:
            raise ValueError(f"--model-timeout must be > 0 seconds, got {self.model_timeout}")
        if self.models_root is not None and not Path(self.models_root).is_dir():
            raise ValueError(f"--models-root {self.models_root} is not a directory")
        if self.memory_budget_mb is not None and self.memory_budget_mb <= 0:
            raise ValueError(f"--memory-budget-mb must be > 0, got {self.memory_budget_mb}")


def _text(status: int, message: str, **headers: str) -> web.Response:
    return web.Response(status=status, body=message.encode("utf-8"),
                        headers={"Content-Type": _TEXT, **headers})


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(data).encode("utf-8"),
                        headers={"Content-Type": "application/json"})


def _timed_invoke(handler: ModelHandler | Pipeline, body: bytes, content_type: str | None, accept: str | None,
                  custom_attributes: str | None, target_model: str | None,
                  model_name: str | None, inference_id: str | None,
                  target_container: str | None = None) -> tuple[Any, int]:
    """Runs on a worker thread: the invocation and its duration in microseconds (error or not)."""
    started = time.perf_counter_ns()
    try:
        if isinstance(handler, Pipeline):
            result = handler.invoke(body, content_type, accept, custom_attributes,
                                    target_container=target_container, inference_id=inference_id)
        else:
            result = handler.invoke(body, content_type, accept, custom_attributes, target_model=target_model,
                                    model_name=model_name, inference_id=inference_id)
    except BaseException as exc:
        try:
            exc.catkit_latency_us = (time.perf_counter_ns() - started) // 1000  # type: ignore[attr-defined]
        except AttributeError:
            pass
        raise
    return result, (time.perf_counter_ns() - started) // 1000


class ModelServer:
    """The aiohttp application and its state (single model or multi-model registry)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.pool = WorkerPool(config.workers)
        self.handler: ModelHandler | Pipeline | None = None
        self.load_error: str | None = None
        self.draining = False
        self.registry: ModelRegistry | None = None
        self._extract_dir: str | None = None
        self._load_task: asyncio.Task[None] | None = None
        if config.multi_model:
            budget = config.memory_budget_mb
            self.registry = ModelRegistry(int(budget * 2**20) if budget is not None else None,
                                          config.models_root, profile=self._profile_factory())
        self.limits = HttpLimits(header_timeout=config.header_timeout, body_timeout=config.body_timeout,
                                 max_connections=config.max_connections)
        self.tracker = Tracker()
        middlewares = [self.tracker.middleware]
        if config.auth_token_file:
            middlewares.append(token_middleware(read_token_file(config.auth_token_file)))
        self.app = web.Application(client_max_size=config.max_body_bytes, middlewares=middlewares)
        self.app.router.add_get("/ping", self.ping)
        self.app.router.add_post("/invocations", self.invocations)
        self.app.router.add_post("/models", self.load_model)
        self.app.router.add_get("/models", self.list_models)
        self.app.router.add_get("/models/{name}", self.describe_model)
        self.app.router.add_delete("/models/{name}", self.unload_model)
        self.app.router.add_post("/models/{name}/invoke", self.invoke_model)
        self.app.on_startup.append(self._on_startup)
        self.app.on_cleanup.append(self._on_cleanup)

    # -- lifecycle -------------------------------------------------------------------------
    async def _on_startup(self, _app: web.Application) -> None:
        if not self.config.multi_model:
            self._load_task = asyncio.create_task(self._load_single())

    async def _on_cleanup(self, _app: web.Application) -> None:
        if self._load_task is not None and not self._load_task.done():
            self._load_task.cancel()
        self.pool.close()
        if self.registry is not None:
            self.registry.close()
        if self._extract_dir is not None:
            shutil.rmtree(self._extract_dir, ignore_errors=True)

    def _profile_factory(self) -> Any:
        """A function making the profile of ``--container`` (fresh per model), or None."""
        if self.config.container is None:
            return None
        from catkit.serving.profiles import profile_for

        kind, multi = self.config.container, self.config.multi_model
        return lambda: profile_for(kind, os.environ, multi_model=multi)

    def _load(self, model_dir: Path) -> ModelHandler | Pipeline:
        if self.config.pipeline is not None:
            return Pipeline.load(*read_spec(self.config.pipeline))
        factory = self._profile_factory()
        return ModelHandler.load(model_dir, profile=factory() if factory else None, code_dir=self.config.code_dir)

    async def _load_single(self) -> None:
        source = Path(self.config.model or "")
        started = time.perf_counter()
        try:
            model_dir = source if self.config.pipeline else await run_in_daemon_thread(self._unpack, source)
            self.handler = await run_in_daemon_thread(self._load, model_dir)
        except Exception as exc:
            self.load_error = exc.message if isinstance(exc, ServingError) else f"{type(exc).__name__}: {exc}"
            log.error("model failed to load: %s", self.load_error, exc_info=not isinstance(exc, ServingError))
            return
        log.info("model ready in %.3f s; /ping now returns 200", time.perf_counter() - started)

    def _unpack(self, source: Path) -> Path:
        if source.is_dir():
            return source
        if not source.is_file():
            raise ModelLoadError(f"MODEL {source} does not exist (expected a model dir or model.tar.gz).")
        from catkit.build import ArchiveError, safe_extract

        self._extract_dir = tempfile.mkdtemp(prefix="catkit-model-")
        try:
            model_dir = safe_extract(source, Path(self._extract_dir) / "model")
        except ArchiveError as exc:  # includes UnsafeArchiveError, which names the member
            raise ModelLoadError(f"Refusing to load {source}: {exc}") from exc
        log.info("extracted %s into %s", source, model_dir)
        return model_dir

    # -- single-model API ------------------------------------------------------------------
    async def ping(self, _request: web.Request) -> web.Response:
        if self.draining:
            return _text(503, "Draining: the server is shutting down.")
        if self.pool.wedged:  # fail health checks so the platform replaces this instance
            return _text(503, f"Unhealthy: all {self.pool.size} worker threads are stuck in handler calls "
                              f"that timed out ({self.pool.stuck} stuck); restart the server.")
        if self.config.multi_model or self.handler is not None:
            return web.Response(status=200, body=b"")
        if self.load_error is not None:
            return _text(503, f"Model failed to load: {self.load_error}")
        return _text(503, "Model is loading.")

    async def invocations(self, request: web.Request) -> web.Response:
        if self.handler is None:
            if self.registry is not None:
                # SageMaker MMS seam: a multi-model /invocations picks the model named by the
                # X-Amzn-SageMaker-Target-Model header (as loaded with POST /models).
                target = request.headers.get(TARGET_MODEL)
                if not target:
                    return _text(404, "This is a multi-model server: invoke POST /models/{name}/invoke "
                                      f"or send {TARGET_MODEL} naming a loaded model.")
                try:
                    model = self.registry.get(target)
                except ServingError as exc:
                    return self._error_response(request, exc)
                model.touch()
                return await self._invoke(model.handler, request, target)
            if self.load_error is not None:
                return _text(503, f"Model failed to load: {self.load_error}")
            return _text(503, "Model is not loaded yet; wait for GET /ping to return 200.")
        return await self._invoke(self.handler, request, None)

    async def _read_body(self, request: web.Request) -> bytes:
        try:
            return await read_limited(request, self.limits, self.config.max_body_bytes,
                                      lambda size: PayloadTooLarge(self._too_large(size)))
        except BodyTimeout:
            raise RequestTimeout("The request body did not arrive in time; the connection is closed.") from None

    def _too_large(self, length: int | None) -> str:
        size = f"{length} bytes" if length is not None else "more than the limit"
        return (f"Request body is {size}; the real-time payload limit is {self.config.max_body_bytes} "
                "bytes (6 MB). Send smaller batches or use asynchronous inference.")

    async def _invoke(self, handler: ModelHandler | Pipeline, request: web.Request,
                      model_name: str | None) -> web.Response:
        try:
            body = await self._read_body(request)
        except ServingError as exc:
            response = _text(exc.status, exc.message)
            response.force_close()
            return response
        headers = request.headers
        try:
            result, latency_us = await self.pool.run(
                _timed_invoke, handler, body, headers.get("Content-Type"), headers.get("Accept"),
                headers.get(CUSTOM_ATTRIBUTES), headers.get(TARGET_MODEL), model_name,
                headers.get(INFERENCE_ID), headers.get(TARGET_CONTAINER), timeout=self.config.model_timeout,
            )
        except CallTimeout:
            message = (f"Model did not respond within --model-timeout {self.config.model_timeout:g} s; "
                       "the request was abandoned.")
            log.warning("%s %s: %s", request.method, request.path, message)
            return _text(ModelTimeout.status, message)
        except Exception as exc:
            return self._error_response(request, exc)
        out = {"Content-Type": result.content_type, LATENCY_HEADER: str(latency_us)}
        if result.custom_attributes is not None:
            out[CUSTOM_ATTRIBUTES] = result.custom_attributes
        return web.Response(body=result.body, headers=out)

    def _error_response(self, request: web.Request, exc: Exception) -> web.Response:
        latency = str(getattr(exc, "catkit_latency_us", 0))
        if isinstance(exc, ServingError) and exc.status == 204:  # XGBoost algorithm: empty request
            return web.Response(status=204, headers={LATENCY_HEADER: latency})
        if isinstance(exc, ContainerFailed):
            if exc.status >= 500:
                log.error("%s %s: container %s: %s", request.method, request.path, exc.hostname, exc.message)
            return _text(exc.status, exc.message, **{LATENCY_HEADER: latency, CONTAINER_HEADER: exc.hostname})
        if is_unsupported_content_type(exc):
            message = exc.message if isinstance(exc, ServingError) else str(exc)
            return _text(415, message, **{LATENCY_HEADER: latency})
        if isinstance(exc, ServingError):
            if exc.status >= 500:
                log.error("%s %s: %s", request.method, request.path, exc.message)
            return _text(exc.status, exc.message, **{LATENCY_HEADER: latency})
        log.error("%s %s: handler raised %s: %s", request.method, request.path,
                  type(exc).__name__, exc, exc_info=exc)
        return _text(500, f"{type(exc).__name__}: {exc}", **{LATENCY_HEADER: latency})

    # -- multi-model API -------------------------------------------------------------------
    def _registry(self) -> ModelRegistry:
        if self.registry is None:
            raise ModelNotFound("This server serves a single model: the /models API needs --multi-model.")
        return self.registry

    async def load_model(self, request: web.Request) -> web.Response:
        try:
            registry = self._registry()
            try:
                payload = await request.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise BadRequest('POST /models needs a JSON body {"model_name": ..., "url": ...}.') from None
            if not isinstance(payload, dict):
                raise BadRequest('POST /models needs a JSON object {"model_name": ..., "url": ...}.')
            model = await registry.load(payload.get("model_name"), payload.get("url"))
        except ServingError as exc:
            return self._error_response(request, exc)
        return _json({"status": f'Model "{model.name}" loaded', **model.describe()})

    async def list_models(self, request: web.Request) -> web.Response:
        try:
            page = self._registry().page(request.query.get("limit"), request.query.get("next_page_token"))
        except ServingError as exc:
            return self._error_response(request, exc)
        return _json(page)

    async def describe_model(self, request: web.Request) -> web.Response:
        try:
            model = self._registry().get(request.match_info["name"])
        except ServingError as exc:
            return self._error_response(request, exc)
        return _json(model.describe())

    async def unload_model(self, request: web.Request) -> web.Response:
        try:
            model = self._registry().unload(request.match_info["name"])
        except ServingError as exc:
            return self._error_response(request, exc)
        return _json({"status": f'Model "{model.name}" unloaded'})

    async def invoke_model(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            model = self._registry().get(name)
        except ServingError as exc:
            return self._error_response(request, exc)
        model.touch()
        return await self._invoke(model.handler, request, name)


def write_ready_file(path: str | os.PathLike[str], port: int, unix: str | None = None) -> None:
    """Atomically write ``{"port": N, "pid": PID}`` (and ``"unix": NAME`` when listening there too;
    temp file in the same dir, then rename)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ready-", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump({"port": port, "pid": os.getpid(), **({"unix": unix} if unix else {})}, handle)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


async def serve(config: ServerConfig, *, stop: asyncio.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); drain in-flight requests; return 0."""
    server = ModelServer(config)
    runner = web.AppRunner(server.app, access_log=None, handle_signals=False,
                           shutdown_timeout=config.drain_seconds, **server.limits.runner_kwargs())
    await runner.setup()
    site: LimitedSite | None = None
    try:
        site = LimitedSite(runner, config.host, config.port, server.limits, server.tracker)
        await site.start()
        port = site.bound_port
        unix = config.unix_socket
        if unix:
            try:
                await LimitedSite(runner, config.host, port, server.limits, server.tracker, unix=unix).start()
            except OSError as exc:  # e.g. a sandbox without Unix sockets: the backend then uses the TCP port
                log.warning("cannot listen on Unix socket %s (%s); TCP only", unix, exc)
                unix = None
        log.info("listening on http://%s:%d (pid %d, %s, %d workers)", config.host, port, os.getpid(),
                 "multi-model" if config.multi_model else f"model {config.model}", config.workers)
        if config.ready_file:
            write_ready_file(config.ready_file, port, unix)
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):  # not the main thread
                pass
        await stop.wait()
        log.info("shutting down: no new connections, draining in-flight requests (up to %g s)",
                 config.drain_seconds)
        server.draining = True
    finally:
        if site is not None:
            site.close_idle()  # idle keep-alive or lingering connections: nothing to drain
        await runner.cleanup()
    log.info("stopped")
    return 0


def build_arg_parser(prog: str = "python -m catkit.serving.server") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Serve a model with SageMaker's container HTTP API.")
    add_server_arguments(parser)
    return parser


def add_server_arguments(parser: argparse.ArgumentParser, *, model_required: bool = False) -> None:
    """The options shared by ``python -m catkit.serving.server`` and ``catkit serve``."""
    parser.add_argument("model", metavar="MODEL", nargs=None if model_required else "?",
                        help="model directory (model files + code/inference.py) or model.tar.gz; "
                             "omit for a multi-model server")
    parser.add_argument("--port", type=int, default=8080, help="port (0 = pick a free one; default 8080)")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--ready-file", help='write {"port": N, "pid": PID} here once listening')
    parser.add_argument("--multi-model", action="store_true", help="start an empty multi-model server")
    parser.add_argument("--memory-budget-mb", type=float, help="multi-model: refuse loads beyond this (507)")
    parser.add_argument("--model-timeout", type=float, default=None,
                        help="seconds before an invocation is abandoned with 504 "
                             "(default: $SAGEMAKER_MODEL_SERVER_TIMEOUT or none)")
    parser.add_argument("--workers", type=int, default=None,
                        help="handler threads (default: $SAGEMAKER_MODEL_SERVER_WORKERS or 2-4)")
    parser.add_argument("--models-root", help="multi-model: only load model urls under this directory")
    parser.add_argument("--drain-seconds", type=float, default=DEFAULT_DRAIN_SECONDS,
                        help="on SIGTERM, how long to wait for in-flight requests (default 30)")
    parser.add_argument("--container", help="serve as this AWS container does: sklearn, xgboost, pytorch, "
                                            "tensorflow, huggingface or custom (default: catkit's own defaults)")
    parser.add_argument("--code-dir", help="with --container: the directory holding the user script "
                                           "(default MODEL/code)")
    parser.add_argument("--pipeline", help="a multi-container spec file (JSON) to serve instead of MODEL")
    parser.add_argument("--header-timeout", type=float, default=30.0,
                        help="seconds a connection has to deliver a request head (default 30)")
    parser.add_argument("--body-timeout", type=float, default=30.0,
                        help="seconds a request body may take, plus 1 s per 256 KiB (default 30; then 408)")
    parser.add_argument("--max-connections", type=int, default=256,
                        help="open connections beyond this are answered 503 (default 256)")
    parser.add_argument("--unix-socket", help="also listen on this Unix socket (@NAME: Linux's abstract NAME)")
    parser.add_argument("--auth-token-file", help="answer only requests whose X-Catkit-Instance-Token header "
                                                  "holds the token in this file (403 otherwise)")


#: The ServerConfig fields :func:`add_server_arguments` defines an option for (same names).
_OPTION_FIELDS = (
    "model", "multi_model", "host", "port", "ready_file", "memory_budget_mb", "model_timeout", "workers",
    "drain_seconds", "models_root", "container", "code_dir", "pipeline", "auth_token_file",
    "header_timeout", "body_timeout", "max_connections", "unix_socket",
)


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """The :class:`ServerConfig` of parsed options; an unset timeout or worker count gets its default
    (:func:`default_model_timeout`, :func:`default_workers`)."""
    values = {name: getattr(args, name) for name in _OPTION_FIELDS}
    if values["model_timeout"] is None:
        values["model_timeout"] = default_model_timeout()
    if values["workers"] is None:
        values["workers"] = default_workers()
    return ServerConfig(**values)


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")


def run(args: argparse.Namespace) -> int:
    """Validate ``args``, then serve until stopped. Exit code 2 on a configuration error."""
    configure_logging()
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"catkit model server: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(serve(config))
    except OSError as exc:
        print(f"catkit model server: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    return run(build_arg_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
