"""Endpoint instances as real processes: one ``catkit.serving.server`` subprocess per instance.

Owns an instance's whole life: emulated provisioning delay, model archive download from the
backend's S3 and safe extraction into ``CATKIT_HOME/instances/<endpoint>/<instance-id>/``, process
start (``--port 0 --ready-file``), start-up health checks on ``/ping`` (2 s per attempt, like AWS,
within the emulated 4-minute window), liveness checks, draining and SIGTERM -> SIGKILL after 30
emulated seconds, logs in ``CATKIT_HOME/logs/instances/<endpoint>/<instance-id>.log`` and CPU/memory
sampling with psutil.

Processes never outlive the backend: each starts in its own session (so a terminal's Ctrl-C does not
hit it directly), asks the kernel to SIGKILL it when the backend dies (Linux ``PR_SET_PDEATHSIG``),
and an ``atexit`` hook kills whatever is still registered (:mod:`catkit.local.fleet.housekeeping`,
which also sweeps what a killed backend left; the pool's health round rotates logs over
``InstanceSettings.log_cap_mb``).

Requests reach a running instance through :mod:`catkit.local.fleet.forward` (the keep-alive
HTTP client). Each instance has its own random token (``auth-token``, 0600, in its directory; the
server gets ``--auth-token-file``): every call the backend makes sends it in ``auth_headers`` and the
server refuses anything else (:mod:`catkit.serving.auth`), so the instance port is no side door.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import os
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from catkit.build import ArchiveTooLarge
from catkit.local.clock import Clock
from catkit.local.fleet import housekeeping
from catkit.local.fleet.container_env import allowed_environment
from catkit.local.fleet.forward import ForwardProtocolError, KeepAlivePool  # noqa: F401 - moved there
from catkit.local.fleet.hardware import emulated
from catkit.local.fleet.launch_plan import (
    _write_and_extract,
    check_frameworks,
    code_source,
    tail_lines,
    too_large_hint,
    unpacked_cap_bytes,
    where_logs_are,
    workers_for,
)
from catkit.local.fleet.mme_rules import server_arguments, server_environment
from catkit.s3_urls import split_s3_url
from catkit.serving.auth import TOKEN_FILE_OPTION, TOKEN_HEADER, new_token, write_token_file
from catkit.serving.containers import container_for_image
from catkit.serving.pipeline import ContainerSpec, union_environment, write_spec
from catkit.serving.unix_socket import new_socket_name

log = logging.getLogger("catkit.local.fleet.instances")


class InstanceState(enum.StrEnum):
    PROVISIONING = "Provisioning"  # emulated hardware delay
    STARTING = "Starting"  # downloading the model, process starting, waiting for /ping
    IN_SERVICE = "InService"  # takes traffic
    DRAINING = "Draining"  # no new traffic; in-flight requests finish
    STOPPED = "Stopped"
    FAILED = "Failed"


#: How the model server's /ping answers once the model could not load (catkit.serving.server).
LOAD_FAILED = "Model failed to load:"


class InstanceLaunchError(Exception):
    """An instance could not start; the message is AWS-style and ends up in FailureReason."""


@dataclass
class InstanceSettings:
    """Timings and the command of instance processes. Durations are emulated seconds unless the
    name says ``real``.

    ``startup_health_real_floor``: the emulated 4-minute start-up window is never shorter than
    this many real seconds, because a real Python process needs real time to import and load a
    model whatever the time scale.
    """

    provisioning_seconds: float = 240.0
    startup_health_seconds: float = 240.0
    startup_health_real_floor: float = 60.0
    ping_timeout_real: float = 2.0
    health_interval_seconds: float = 30.0
    unhealthy_after: int = 3
    stop_grace_seconds: float = 30.0
    stop_grace_real_floor: float = 1.0
    drain_timeout_real: float = 65.0
    server_command: Sequence[str] = (sys.executable, "-m", "catkit.serving.server")
    #: Real seconds the model server gives one handler call before abandoning it (its worker
    #: thread is replaced, so a hanging handler cannot wedge the instance); the endpoint manager
    #: sets it to the invocation timeout. None = no server-side limit.
    model_timeout_real: float | None = None
    #: Caps the instance type's memory (MiB) - the budget a process is recycled beyond
    #: (``CATKIT_INSTANCE_MEMORY_MB``); None = the instance type's memory.
    memory_limit_mb: float | None = None
    #: Most MiB one model archive may unpack to (``CATKIT_MAX_UNPACKED_MB``); None = an eighth of the
    #: instance type's storage volume (launch_plan.unpacked_cap_bytes).
    max_unpacked_mb: float | None = None
    #: An instance log over this many MiB is rotated (one old generation kept) by the health round.
    log_cap_mb: float = housekeeping.DEFAULT_LOG_CAP_BYTES / 2**20

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> InstanceSettings:
        """Defaults, then ``CATKIT_PROVISIONING_SECONDS`` / ``CATKIT_STARTUP_HEALTH_SECONDS`` /
        ``CATKIT_INSTANCE_MEMORY_MB`` / ``CATKIT_MAX_UNPACKED_MB`` / ``CATKIT_INSTANCE_LOG_MB`` from the
        environment, then explicit overrides."""
        env = os.environ if environ is None else environ
        s = cls()
        for var, attr, unit in (
            ("CATKIT_PROVISIONING_SECONDS", "provisioning_seconds", "a number of emulated seconds"),
            ("CATKIT_STARTUP_HEALTH_SECONDS", "startup_health_seconds", "a number of emulated seconds"),
            ("CATKIT_INSTANCE_MEMORY_MB", "memory_limit_mb", "a number of MiB"),
            ("CATKIT_MAX_UNPACKED_MB", "max_unpacked_mb", "a number of MiB"),
            ("CATKIT_INSTANCE_LOG_MB", "log_cap_mb", "a number of MiB"),
        ):
            if env.get(var):
                try:
                    setattr(s, attr, float(env[var]))
                except ValueError:
                    raise ValueError(f"{var} must be {unit}, got {env[var]!r}") from None
        for k, v in overrides.items():
            if v is not None:
                setattr(s, k, v)
        return s


@dataclass
class InstanceSpec:
    """What to run: one production variant's container on one instance type."""

    endpoint: str
    variant: str
    instance_type: str
    model_data_url: str | None
    environment: dict[str, str] = field(default_factory=dict)
    mode: str = "SingleModel"  # "MultiModel" starts the server with --multi-model (MME seam)
    container_name: str = "primary"
    image: str | None = None
    #: Every container of a multi-container model ({ContainerHostname, Image, ModelDataUrl,
    #: Environment}); empty for a single container (the fields above).
    containers: list[dict[str, Any]] = field(default_factory=list)
    execution_mode: str = "Serial"  # InferenceExecutionConfig.Mode of a multi-container model

    def container_list(self) -> list[dict[str, Any]]:
        """Every container as {ContainerHostname, Image, ModelDataUrl, Environment}."""
        if self.containers:
            return [dict(c) for c in self.containers]
        return [{"ContainerHostname": self.container_name, "Image": self.image,
                 "ModelDataUrl": self.model_data_url, "Environment": dict(self.environment)}]


def _safe_component(name: str) -> str:
    """Endpoint names follow SageMaker's pattern; refuse anything that could escape a directory."""
    if not name or "/" in name or "\\" in name or name in (".", "..") or "\x00" in name:
        raise ValueError(f"unsafe path component {name!r}")
    return name


class Instance:
    """One endpoint instance (a model-server process). ``outstanding`` counts in-flight requests
    routed to it; ``window_max`` is the peak of ``outstanding`` since the last metric sample."""

    def __init__(self, spec: InstanceSpec, home: Path, instance_id: str | None = None) -> None:
        self.spec = spec
        self.id = instance_id or f"i-{secrets.token_hex(8)}"
        self.state = InstanceState.PROVISIONING
        self.outstanding = 0
        self.window_max = 0
        self.failure_reason: str | None = None
        self.port: int | None = None
        self.url: str | None = None
        self.invocations_url: str | None = None
        self.unix_socket: str | None = None  # the server's Unix socket, when it has one
        self.pid: int | None = None
        self.health_failures = 0
        self.launched_at: float | None = None
        #: The headers every request to this instance carries (its token; catkit.serving.auth).
        self.auth_headers: dict[str, str] = {TOKEN_HEADER: new_token()}
        ep = _safe_component(spec.endpoint)
        self.dir = home / "instances" / ep / self.id
        self.log_path = home / "logs" / "instances" / ep / f"{self.id}.log"
        self._process: asyncio.subprocess.Process | None = None
        self._ps: psutil.Process | None = None
        self.gone = False  # its process died (check_gone); not routable from then on
        self._exit_waiter: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.unpack_cap = unpacked_cap_bytes(spec.instance_type)  # launch() applies the settings
        hw = emulated(spec.instance_type)  # the type's vCPU and memory, scaled down to this machine
        self.vcpu = hw.vcpu
        self.memory_bytes = hw.memory_bytes

    # -- routing bookkeeping (hot path: keep these trivial) --
    @property
    def routable(self) -> bool:
        return self.state is InstanceState.IN_SERVICE and not self.gone

    def check_gone(self) -> bool:
        """After a failed connection: whether the process has died (a zombie not yet reaped by the
        exit watcher, which can lag on a loaded machine); if so it takes no more requests."""
        if self._ps is None:
            return False
        try:
            self.gone = self._ps.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
        except psutil.Error:
            self.gone = True
        return self.gone

    def begin_request(self) -> None:
        self.outstanding += 1
        if self.outstanding > self.window_max:
            self.window_max = self.outstanding
        self._idle.clear()

    def end_request(self) -> None:
        self.outstanding -= 1
        if self.outstanding <= 0:
            self.outstanding = 0
            self._idle.set()

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.returncode is None

    def __repr__(self) -> str:
        return f"<Instance {self.spec.endpoint}/{self.spec.variant}/{self.id} {self.state} port={self.port}>"

    # -- launch --
    async def launch(
        self,
        s3: Any,
        clock: Clock,
        settings: InstanceSettings,
        session: aiohttp.ClientSession,
        *,
        provision: bool = True,
        on_exit: Any = None,
    ) -> None:
        """Provision (emulated delay), fetch + extract the model, start the server and wait for a
        healthy ``/ping``. Raises InstanceLaunchError with an AWS-style reason on failure (the
        process, if any, is stopped first)."""
        try:
            try:  # before the provisioning delay: a missing framework fails CreateEndpoint at once
                check_frameworks([c.get("Image") for c in self.spec.container_list()], self.spec.variant)
            except ValueError as e:
                raise InstanceLaunchError(str(e)) from None
            if provision and settings.provisioning_seconds > 0:
                self.state = InstanceState.PROVISIONING
                await clock.sleep(settings.provisioning_seconds)
            self.state = InstanceState.STARTING
            self.unpack_cap = unpacked_cap_bytes(self.spec.instance_type, settings.max_unpacked_mb)
            self.dir.mkdir(parents=True, exist_ok=True)
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            model_arg = await self._fetch_model(s3)
            extra = await self._plan_containers(s3, model_arg)
            await self._spawn(model_arg, settings, on_exit, extra)
            await self._wait_healthy(clock, settings, session)
            self.state = InstanceState.IN_SERVICE
            self.launched_at = clock.now()
        except InstanceLaunchError as e:
            self.failure_reason = str(e)
            self.state = InstanceState.FAILED
            await self.kill()
            raise
        except asyncio.CancelledError:
            self.state = InstanceState.STOPPED
            await self.kill()
            raise

    async def _fetch_model(self, s3: Any) -> str | None:
        spec = self.spec
        if spec.mode == "MultiModel" or spec.containers:
            return None
        return await self._fetch_archive(s3, spec.model_data_url, self.dir / "model", spec.container_name)

    async def _plan_containers(self, s3: Any, model_arg: str | None) -> list[str]:
        """Server arguments for the container(s): ``--container``/``--code-dir`` for one,
        ``--pipeline`` for several (their archives and code fetched into the instance dir)."""
        spec = self.spec
        if spec.mode == "MultiModel":
            return ["--container", container_for_image(spec.image).name]
        specs = []
        for i, c in enumerate(spec.container_list()):
            name = c.get("ContainerHostname") or spec.container_name
            env = dict(c.get("Environment") or {})
            try:
                source = code_source(env, name)
            except ValueError as e:
                raise InstanceLaunchError(str(e)) from None
            model_dir = model_arg if not spec.containers else await self._fetch_archive(
                s3, c.get("ModelDataUrl"), self.dir / f"model-{i}", name)
            code_dir = None
            if source.s3_url:
                code_dir = await self._fetch_archive(s3, source.s3_url, self.dir / f"code-{i}", name,
                                                     what="SAGEMAKER_SUBMIT_DIRECTORY source code")
            specs.append(ContainerSpec(name, str(model_dir), container_for_image(c.get("Image")).name,
                                       code_dir, {k: str(v) for k, v in env.items()}))
        if not spec.containers:
            one = specs[0]
            return ["--container", one.container] + (["--code-dir", one.code_dir] if one.code_dir else [])
        path = self.dir / "pipeline.json"
        write_spec(path, spec.execution_mode, specs)
        return ["--pipeline", str(path)]

    async def _fetch_archive(self, s3: Any, url: str | None, target: Path, container: str,
                             what: str = "model data") -> str:
        spec = self.spec
        if not url:
            raise InstanceLaunchError(
                f'The container "{container}" of model for variant "{spec.variant}" has no '
                "ModelDataUrl; the local backend runs models from an S3 model.tar.gz "
                "(CreateModel PrimaryContainer.ModelDataUrl)."
            )
        fail = (
            f'Failed to download {what} for container "{container}" from URL: '
            f'"{url}". Please ensure that there is an object located at the URL and '
            "that the role passed to CreateModel has permissions to download the object."
        )
        try:
            bucket, key = split_s3_url(url)
        except ValueError as e:
            raise InstanceLaunchError(f"{fail} ({e})") from None
        try:
            head = await s3.head_object(bucket, key)
            if head is None:
                raise InstanceLaunchError(fail)
            data = await s3.get_object(bucket, key)
        except InstanceLaunchError:
            raise
        except Exception as e:
            raise InstanceLaunchError(f"{fail} ({type(e).__name__}: {e})") from None
        archive = target.with_name(target.name + ".tar.gz")
        try:
            await asyncio.to_thread(_write_and_extract, data, archive, target, self.unpack_cap)
        except Exception as e:
            hint = f" {too_large_hint(spec.instance_type, self.unpack_cap)}" if isinstance(e, ArchiveTooLarge) else ""
            raise InstanceLaunchError(
                f'Failed to extract {what} for container "{container}" from URL: "{url}": {e}.{hint}'
            ) from None
        return str(target)

    async def _spawn(self, model_arg: str | None, settings: InstanceSettings, on_exit: Any,
                     extra: Sequence[str] = ()) -> None:
        ready = self.dir / "ready.json"
        with contextlib.suppress(FileNotFoundError):
            ready.unlink()
        if settings.memory_limit_mb:
            self.memory_bytes = min(self.memory_bytes, int(settings.memory_limit_mb * 1024 * 1024))
        budget_mb = int(self.memory_bytes // (1024 * 1024))
        cmd = list(settings.server_command)
        if model_arg is not None:
            cmd.append(model_arg)
        token_file = self.dir / "auth-token"
        write_token_file(token_file, self.auth_headers[TOKEN_HEADER])
        cmd += ["--port", "0", "--host", "127.0.0.1", "--ready-file", str(ready), TOKEN_FILE_OPTION, str(token_file)]
        unix = new_socket_name()  # the data plane's way in (catkit.serving.unix_socket); Linux only
        cmd += ["--unix-socket", unix] if unix else []
        if self.spec.mode == "MultiModel":
            try:  # budgets + --models-root
                cmd += ["--multi-model", *server_arguments(self.spec.instance_type, self.dir, self.spec.environment)]
            except ValueError as e:  # a bad CATKIT_MME_*_BUDGET_MB
                raise InstanceLaunchError(str(e)) from None
        else:
            cmd += ["--memory-budget-mb", str(budget_mb)]
        if settings.model_timeout_real:
            cmd += ["--model-timeout", repr(float(settings.model_timeout_real))]
        container_env = union_environment(
            [ContainerSpec("", "", environment=dict(c.get("Environment") or {})) for c in self.spec.container_list()]
        )
        try:
            cmd += [*extra, "--workers", str(workers_for(self.spec.instance_type, container_env))]
        except ValueError as e:
            raise InstanceLaunchError(f"Production variant {self.spec.variant}: {e}") from None
        env = dict(os.environ)
        env.update(allowed_environment(container_env))  # CreateModel refused the rest (container_env)
        env["CATKIT_INSTANCE_ID"] = self.id
        env["SAGEMAKER_ENDPOINT_NAME"] = self.spec.endpoint
        env["SAGEMAKER_VARIANT_NAME"] = self.spec.variant
        if self.spec.mode == "MultiModel":
            env.update(server_environment())
        logf = open(self.log_path, "ab", buffering=0)  # noqa: SIM115 - handed to the child
        try:
            logf.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {' '.join(cmd)}\n".encode())
            self._process = await asyncio.create_subprocess_exec(
                *cmd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=logf,
                stderr=asyncio.subprocess.STDOUT,
                cwd=str(self.dir),
                env=env,
                start_new_session=True,
                preexec_fn=housekeeping.die_with_parent if sys.platform.startswith("linux") else None,
            )
        except OSError as e:
            raise InstanceLaunchError(f"Failed to start the model server for variant {self.spec.variant}: {e}") from None
        finally:
            logf.close()
        self.pid = self._process.pid
        housekeeping.LIVE[self.pid] = self.id
        with contextlib.suppress(psutil.Error):
            self._ps = psutil.Process(self.pid)
            self._ps.cpu_percent(None)
        self._exit_waiter = asyncio.create_task(self._watch_exit(on_exit))

    async def _watch_exit(self, on_exit: Any) -> None:
        proc = self._process
        assert proc is not None
        rc = await proc.wait()
        housekeeping.LIVE.pop(proc.pid, None)
        if self.state is InstanceState.IN_SERVICE and on_exit is not None:
            self.failure_reason = f"model server process exited with code {rc}"
            res = on_exit(self, rc)
            if asyncio.iscoroutine(res):
                await res

    async def _wait_healthy(self, clock: Clock, settings: InstanceSettings, session: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + max(
            clock.real_seconds(settings.startup_health_seconds), settings.startup_health_real_floor
        )
        ready = self.dir / "ready.json"
        while self.port is None:
            if not self.alive:
                raise InstanceLaunchError(self._exit_reason())
            if time.monotonic() > deadline:
                raise InstanceLaunchError(self._unhealthy_reason())
            with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
                doc = json.loads(ready.read_text())
                self.port, self.unix_socket = int(doc["port"]), doc.get("unix")
            if self.port is None:
                await asyncio.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.port}"
        self.invocations_url = f"{self.url}/invocations"
        delay = 0.02
        while True:
            if not self.alive:
                raise InstanceLaunchError(self._exit_reason())
            status, text = await self._ping_status(session, settings.ping_timeout_real)
            if status == 200:
                return
            if status == 503 and text.startswith(LOAD_FAILED):  # the server knows: fail now
                raise InstanceLaunchError(self._load_failed_reason(text[len(LOAD_FAILED):].strip()))
            if time.monotonic() > deadline:
                raise InstanceLaunchError(self._unhealthy_reason())
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    def where_logs_are(self) -> str:
        """Where this instance's logs are: AWS's log group and stream, and the local file."""
        return where_logs_are(self.spec.endpoint, self.spec.variant, self.id, self.log_path)

    def _unhealthy_reason(self) -> str:
        return (
            f"The primary container for production variant {self.spec.variant} did not pass the ping "
            f"health check. Please check CloudWatch logs for this endpoint. {self.where_logs_are()}"
        )

    def _load_failed_reason(self, cause: str) -> str:
        cause = " ".join(cause.split())
        if len(cause) > 600:
            cause = cause[:597] + "..."
        return (
            f"The primary container for production variant {self.spec.variant} did not pass the ping "
            f"health check: the model failed to load: {cause} {self.where_logs_are()}"
        )

    def _exit_reason(self) -> str:
        rc = self._process.returncode if self._process else None
        tail = tail_lines(self.log_path, 5)[-400:]
        return (
            f"The primary container for production variant {self.spec.variant} exited (code {rc}) before "
            f"passing the ping health check. Log tail: {tail!r} {self.where_logs_are()}"
        )

    async def _ping_status(self, session: aiohttp.ClientSession, timeout: float) -> tuple[int, str]:
        """GET /ping: (status, body text); (0, "") when it cannot be reached."""
        if self.url is None:
            return 0, ""
        try:
            async with session.get(f"{self.url}/ping", headers=self.auth_headers,
                                   timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                return r.status, (await r.read()).decode("utf-8", errors="replace")
        except (TimeoutError, aiohttp.ClientError, OSError):
            return 0, ""

    async def ping(self, session: aiohttp.ClientSession, timeout: float = 2.0) -> bool:
        """GET /ping with AWS's 2-second timeout; True on HTTP 200."""
        if self.url is None:
            return False
        try:
            async with session.get(f"{self.url}/ping", headers=self.auth_headers,
                                   timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                await r.read()
                return r.status == 200
        except (TimeoutError, aiohttp.ClientError, OSError):
            return False

    # -- stop --
    async def drain(self, timeout_real: float) -> bool:
        """Stop taking traffic and wait for in-flight requests (bounded); True if it drained."""
        if self.state in (InstanceState.IN_SERVICE, InstanceState.STARTING, InstanceState.PROVISIONING):
            self.state = InstanceState.DRAINING
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_real)
            return True
        except TimeoutError:
            return False

    async def stop(self, clock: Clock, settings: InstanceSettings, *, drain: bool = True) -> None:
        """Drain, then SIGTERM, then SIGKILL after the (emulated) 30-second grace; remove files."""
        if drain:
            drained = await self.drain(settings.drain_timeout_real)
            if not drained:
                log.warning("%r: %d requests still in flight after drain timeout", self, self.outstanding)
        self.state = InstanceState.DRAINING
        grace = max(clock.real_seconds(settings.stop_grace_seconds), settings.stop_grace_real_floor)
        await self._terminate(grace)
        self.state = InstanceState.STOPPED
        await asyncio.to_thread(shutil.rmtree, self.dir, True)

    async def kill(self) -> None:
        """SIGKILL at once (failed launches, backend shutdown without drain)."""
        await self._terminate(0.0)
        await asyncio.to_thread(shutil.rmtree, self.dir, True)

    async def _terminate(self, grace_real: float) -> None:
        proc = self._process
        if proc is None:
            return
        if proc.returncode is None:
            sig = signal.SIGTERM if grace_real > 0 else signal.SIGKILL
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            try:
                await asyncio.wait_for(proc.wait(), grace_real if grace_real > 0 else 5.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(proc.wait(), 5.0)
        # Whatever else is left in the process group (helpers the server started).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        housekeeping.LIVE.pop(proc.pid, None)
        waiter = self._exit_waiter
        if waiter is not None and not waiter.done() and waiter is not asyncio.current_task():
            self._exit_waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._exit_waiter

    def kill_now(self) -> None:
        """Synchronous SIGKILL of the process group (last-resort cleanup)."""
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, signal.SIGKILL)

    def over_memory(self) -> int | None:
        """The process's resident memory in bytes if it exceeds the instance's memory, else None
        (AWS's container would be OOM-killed; the endpoint manager recycles the instance)."""
        if self._ps is None or not self.alive:
            return None
        try:
            rss = self._ps.memory_info().rss
        except psutil.Error:
            return None
        return rss if rss > self.memory_bytes else None

    # -- metrics --
    def sample_usage(self) -> tuple[float, float] | None:
        """(CPU percent summed over cores: 0-100 per vCPU, memory % of the instance type's memory)
        since the previous call; None if the process is gone."""
        if self._ps is None or not self.alive:
            return None
        try:
            # The model server is one process (handlers run on threads), so the process itself is
            # the container; scanning /proc for children would cost milliseconds per sample.
            with self._ps.oneshot():
                cpu = self._ps.cpu_percent(None)
                rss = self._ps.memory_info().rss
        except psutil.Error:
            return None
        cpu = min(cpu, 100.0 * self.vcpu)
        return cpu, min(100.0, 100.0 * rss / self.memory_bytes)
