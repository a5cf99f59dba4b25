"""Fault injection on endpoint instances: kill -9 under load, a hanging handler, a leaking handler.

One backend (time scale 600, invocation timeout 3 s, instance memory capped at 400 MiB) serves
every test of this module; each test deploys its own endpoint over boto3.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import botocore.exceptions
import psutil
import pytest

from catkit.testing import LocalBackend, deploy_endpoint, process_exited, upload_model, wait_until

INVOCATION_TIMEOUT_S = 3
MEMORY_MB = 400


@pytest.fixture(scope="module")
def backend():
    b = LocalBackend(time_scale=600, env={
        "CATKIT_INVOCATION_TIMEOUT_SECONDS": str(INVOCATION_TIMEOUT_S),
        "CATKIT_INSTANCE_MEMORY_MB": str(MEMORY_MB),
    })
    try:
        b.start()
        upload_model(b)
        yield b
    finally:
        b.close()


def _code(exc: botocore.exceptions.ClientError) -> tuple[str, int]:
    return exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]


def _echo(rt, name: str, body: bytes = b"ping") -> bytes:
    return rt.invoke_endpoint(EndpointName=name, Body=body, ContentType="text/plain")["Body"].read()


def test_kill9_instance_under_load_is_replaced_and_only_its_in_flight_requests_fail(backend):
    sm, rt = backend.client("sagemaker"), backend.client("sagemaker-runtime")
    assert deploy_endpoint(sm, "k9", "s3://models/echo/model.tar.gz", count=2)["EndpointStatus"] == "InService"
    before = backend.instance_pids("k9")
    assert len(before) == 2
    stop = threading.Event()
    lock = threading.Lock()
    ok: list[float] = []
    failures: list[tuple[float, str, int]] = []
    statuses: set[str] = set()
    workers = 6

    def client() -> None:
        while not stop.is_set():
            try:
                rt.invoke_endpoint(EndpointName="k9", Body=b"0.05", ContentType="application/x-sleep")
                with lock:
                    ok.append(time.monotonic())
            except botocore.exceptions.ClientError as e:
                with lock:
                    failures.append((time.monotonic(), *_code(e)))

    def watch() -> None:
        while not stop.is_set():
            statuses.add(sm.describe_endpoint(EndpointName="k9")["EndpointStatus"])
            time.sleep(0.1)

    with ThreadPoolExecutor(workers + 1) as pool:
        futures = [pool.submit(client) for _ in range(workers)] + [pool.submit(watch)]
        wait_until(lambda: len(ok) > 20, 30, what="traffic to flow")
        victim = before[0]
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        # A replacement comes up (a new pid) while the survivor keeps serving.
        wait_until(lambda: len(set(backend.instance_pids("k9")) - set(before)) == 1, 60,
                   what="a replacement instance")
        wait_until(
            lambda: sm.describe_endpoint(EndpointName="k9")["ProductionVariants"][0]["CurrentInstanceCount"] == 2,
            60, what="CurrentInstanceCount back to 2",
        )
        replaced_at = time.monotonic()
        n_ok = len(ok)
        wait_until(lambda: len(ok) > n_ok + 20, 30, what="traffic after the replacement")
        stop.set()
        for f in futures:
            f.result()

    assert statuses == {"InService"}, f"endpoint left InService: {statuses}"
    assert process_exited(victim)
    # At most the requests in flight on the killed instance fail (each client has one in flight),
    # all with AWS's ModelError 424, and only around the kill.
    assert len(failures) <= workers, failures
    assert all(code == "ModelError" and status == 424 for _, code, status in failures), failures
    assert all(killed_at <= t <= replaced_at + 1 for t, _, _ in failures), (killed_at, failures)
    assert _echo(rt, "k9") == b"ping"
    sm.delete_endpoint(EndpointName="k9")


def test_hanging_handler_gives_model_error_after_timeout_and_the_instance_recovers(backend):
    sm, rt = backend.client("sagemaker"), backend.client("sagemaker-runtime")
    assert deploy_endpoint(sm, "hang", "s3://models/echo/model.tar.gz", count=1)["EndpointStatus"] == "InService"
    pid = backend.instance_pids("hang")[0]

    def hang(_: int) -> tuple[str, int, float]:
        t0 = time.monotonic()
        with pytest.raises(botocore.exceptions.ClientError) as e:
            rt.invoke_endpoint(EndpointName="hang", Body=b"", ContentType="application/x-hang")
        return (*_code(e.value), time.monotonic() - t0)

    # More hung calls than the model server has worker threads (2-4): all must time out ...
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(hang, range(6)))
    for code, status, elapsed in results:
        assert (code, status) == ("ModelError", 424)
        assert elapsed >= INVOCATION_TIMEOUT_S * 0.9
    # ... and then the same instance answers normal requests again, promptly.
    for _ in range(5):
        assert _echo(rt, "hang") == b"ping"
    assert backend.instance_pids("hang") == [pid]
    assert sm.describe_endpoint(EndpointName="hang")["EndpointStatus"] == "InService"
    sm.delete_endpoint(EndpointName="hang")


def test_handler_leaking_past_the_memory_budget_gets_its_instance_recycled(backend):
    sm, rt = backend.client("sagemaker"), backend.client("sagemaker-runtime")
    assert deploy_endpoint(sm, "leak", "s3://models/echo/model.tar.gz", count=1)["EndpointStatus"] == "InService"
    [pid] = backend.instance_pids("leak")
    errors = []
    for _ in range(4):  # 4 x 120 MiB held by the handler: over the 400 MiB budget
        try:
            rt.invoke_endpoint(EndpointName="leak", Body=b"120", ContentType="application/x-leak")
        except botocore.exceptions.ClientError as e:  # recycled while this request was in flight
            errors.append(_code(e))
    assert set(errors) <= {("ModelError", 424)}, errors
    wait_until(lambda: (p := backend.instance_pids("leak")) and pid not in p, 60,
               what="the leaking instance to be recycled")
    wait_until(lambda: process_exited(pid),
               30, what="the leaking process to be gone")
    d = wait_until(
        lambda: (d := sm.describe_endpoint(EndpointName="leak"))["ProductionVariants"][0][
            "CurrentInstanceCount"] == 1 and d,
        60, what="a fresh instance in service",
    )
    assert d["EndpointStatus"] == "InService"
    assert _echo(rt, "leak") == b"ping"
    # The new process starts from scratch (a leak request that arrived after the recycle may have
    # landed on it, so up to 120 MiB of hoard): it is back under the budget and keeps serving.
    [fresh] = backend.instance_pids("leak")
    assert fresh != pid and psutil.Process(fresh).memory_info().rss < MEMORY_MB * 2**20
    assert _echo(rt, "leak") == b"ping"
    sm.delete_endpoint(EndpointName="leak")
