"""The single-model HTTP contract, in process over real HTTP on 127.0.0.1 (aiohttp test server)."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from catkit.serving.server import (
    LATENCY_HEADER,
    MAX_BODY_BYTES,
    NonLoopbackHost,
    ServerConfig,
    check_loopback,
)

CUSTOM = "X-Amzn-SageMaker-Custom-Attributes"


def config(model_dir: Path, **kwargs: Any) -> ServerConfig:
    return ServerConfig(model=str(model_dir), **kwargs)


def test_ping_is_503_until_the_model_is_loaded(make_model: Any, tmp_path: Path, sv: Any) -> None:
    gate = tmp_path / "gate"
    source = f"""
    import time
    from pathlib import Path

    def model_fn(model_dir):
        while not Path({str(gate)!r}).exists():
            time.sleep(0.01)
        return "loaded"

    def transform_fn(model, body, content_type, accept):
        return model, "text/plain"
    """

    async def scenario(client: Any, _server: Any) -> None:
        resp = await client.get("/ping")
        assert resp.status == 503 and "loading" in (await resp.text()).lower()
        resp = await client.post("/invocations", data=b"x")
        assert resp.status == 503
        gate.touch()
        await sv.wait_ping(client)
        resp = await client.post("/invocations", data=b"x")
        assert resp.status == 200 and await resp.read() == b"loaded"

    sv.run_in_process(config(make_model("gated", source)), scenario, wait_ready=False)


def test_failed_load_keeps_ping_503_with_the_reason(make_model: Any, sv: Any) -> None:
    async def scenario(client: Any, server: Any) -> None:
        await sv.wait_until(lambda: server.load_error, 30, what="the load to fail")
        resp = await client.get("/ping")
        assert resp.status == 503
        assert "weights.bin is missing" in await resp.text()

    source = "def model_fn(d):\n    raise FileNotFoundError('weights.bin is missing')\n"
    sv.run_in_process(config(make_model("broken", source)), scenario, wait_ready=False)


def test_default_codecs_json_csv_npy_and_accept(make_model: Any, sv: Any) -> None:
    async def scenario(client: Any, _server: Any) -> None:
        resp = await client.post("/invocations", data=b"[[1, 2], [3, 4]]",
                                 headers={"Content-Type": "application/json"})
        assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
        assert json.loads(await resp.read()) == [[1, 2], [3, 4]]
        assert int(resp.headers[LATENCY_HEADER]) >= 0

        resp = await client.post("/invocations", data=b"1,2\n3,4\n", headers={"Content-Type": "text/csv"})
        assert resp.headers["Content-Type"] == "text/csv"  # default accept = request type
        assert await resp.read() == b"1.0,2.0\n3.0,4.0\n"

        buffer = io.BytesIO()
        np.save(buffer, np.arange(4.0))
        resp = await client.post("/invocations", data=buffer.getvalue(),
                                 headers={"Content-Type": "application/x-npy", "Accept": "application/json"})
        assert json.loads(await resp.read()) == [0.0, 1.0, 2.0, 3.0]

        resp = await client.post("/invocations", data=b"[5]",
                                 headers={"Content-Type": "application/json", "Accept": "application/x-npy"})
        assert resp.headers["Content-Type"] == "application/x-npy"
        np.testing.assert_array_equal(np.load(io.BytesIO(await resp.read())), [5])

        resp = await client.post("/invocations", data=b"[5]",
                                 headers={"Content-Type": "application/json", "Accept": "*/*"})
        assert resp.headers["Content-Type"] == "application/json"

    sv.run_in_process(config(make_model("identity", sv.IDENTITY)), scenario)


def test_unsupported_types_are_415_and_bad_json_is_400(make_model: Any, sv: Any) -> None:
    async def scenario(client: Any, _server: Any) -> None:
        resp = await client.post("/invocations", data=b"GIF89a", headers={"Content-Type": "image/gif"})
        assert resp.status == 415 and "image/gif" in await resp.text()
        resp = await client.post("/invocations", data=b"[1]",
                                 headers={"Content-Type": "application/json", "Accept": "image/png"})
        assert resp.status == 415 and "image/png" in await resp.text()
        resp = await client.post("/invocations", data=b"{oops", headers={"Content-Type": "application/json"})
        assert resp.status == 400 and "not valid JSON" in await resp.text()

    sv.run_in_process(config(make_model("identity", sv.IDENTITY)), scenario)


def test_handler_value_error_unsupported_content_type_is_415(make_model: Any, sv: Any) -> None:
    async def scenario(client: Any, _server: Any) -> None:
        resp = await client.post("/invocations", data=b"hi", headers={"Content-Type": "text/plain"})
        assert resp.status == 415
        assert (await resp.text()).startswith("Unsupported content type: text/plain")

    sv.run_in_process(config(make_model("failing", sv.FAILING)), scenario)


def test_handler_exception_is_500_with_message_then_server_keeps_serving(make_model: Any, sv: Any) -> None:
    async def scenario(client: Any, _server: Any) -> None:
        resp = await client.post("/invocations", data=b"boom", headers={"Content-Type": "application/json"})
        assert resp.status == 500
        assert await resp.text() == "RuntimeError: the model exploded on purpose"
        assert LATENCY_HEADER in resp.headers
        resp = await client.post("/invocations", data=b"ok", headers={"Content-Type": "application/json"})
        assert resp.status == 200 and await resp.read() == b"fine"
        assert (await client.get("/ping")).status == 200

    sv.run_in_process(config(make_model("failing", sv.FAILING)), scenario)


def test_body_over_6_mb_is_413_by_length_and_when_chunked(make_model: Any, sv: Any) -> None:
    async def chunks() -> Any:
        for _ in range(7):
            yield b"x" * (1024 * 1024)

    async def scenario(client: Any, _server: Any) -> None:
        at_limit = b"a" * MAX_BODY_BYTES
        resp = await client.post("/invocations", data=at_limit, headers={"Content-Type": "text/plain"})
        assert resp.status == 200 and len(await resp.read()) == MAX_BODY_BYTES
        resp = await client.post("/invocations", data=at_limit + b"a", headers={"Content-Type": "text/plain"})
        assert resp.status == 413 and "6 MB" in await resp.text()
        resp = await client.post("/invocations", data=chunks(), headers={"Content-Type": "text/plain"})
        assert resp.status == 413
        resp = await client.post("/invocations", data=b"small", headers={"Content-Type": "text/plain"})
        assert resp.status == 200

    sv.run_in_process(config(make_model("echo", sv.ECHO)), scenario)


def test_model_timeout_is_504_and_server_stays_usable(make_model: Any, sv: Any) -> None:
    async def scenario(client: Any, server: Any) -> None:
        resp = await client.post("/invocations", data=b"3", headers={"Content-Type": "application/json"})
        assert resp.status == 504 and "--model-timeout 0.3 s" in await resp.text()
        # the single worker is stuck for 3 s, yet the next call is served by its replacement
        resp = await client.post("/invocations", data=b"0", headers={"Content-Type": "application/json"})
        assert resp.status == 200 and json.loads(await resp.read()) == {"slept": 0.0}
        assert (await client.get("/ping")).status == 200
        assert server.pool.stuck == 1

    sv.run_in_process(config(make_model("slow", sv.SLOW), model_timeout=0.3, workers=1), scenario)


def test_ping_answers_while_every_worker_runs_a_slow_prediction(make_model: Any, sv: Any) -> None:
    model = make_model("slow", sv.SLOW)

    async def scenario(client: Any, _server: Any) -> None:
        slow = [asyncio.ensure_future(client.post("/invocations", data=b"1.5",
                                                  headers={"Content-Type": "application/json"}))
                for _ in range(2)]
        await sv.wait_until(lambda: sv.started_calls(model) == 2, 30, what="both workers busy")
        assert not any(task.done() for task in slow)
        pings = [await client.get("/ping") for _ in range(5)]
        assert [p.status for p in pings] == [200] * 5
        assert not all(task.done() for task in slow)  # pings came back while predictions ran
        assert [r.status for r in await asyncio.gather(*slow)] == [200, 200]

    sv.run_in_process(config(model, workers=2), scenario)


def test_custom_attributes_pass_through_both_ways(make_model: Any, sv: Any) -> None:
    source = """
    def model_fn(model_dir):
        return None

    def transform_fn(model, body, content_type, accept, context):
        context.response_custom_attributes = "echo=" + (context.custom_attributes or "")
        return f"{context.custom_attributes or ''}|{context.inference_id}", "text/plain"
    """

    async def scenario(client: Any, _server: Any) -> None:
        resp = await client.post("/invocations", data=b"", headers={
            CUSTOM: "trace-id=42,x=y", "X-Amzn-SageMaker-Inference-Id": "inf-7"})
        assert await resp.read() == b"trace-id=42,x=y|inf-7"
        assert resp.headers[CUSTOM] == "echo=trace-id=42,x=y"
        resp = await client.post("/invocations", data=b"")
        assert CUSTOM in resp.headers and resp.headers[CUSTOM] == "echo="

    sv.run_in_process(config(make_model("ctx", source)), scenario)


def test_no_custom_attributes_header_unless_the_handler_sets_one(make_model: Any, sv: Any) -> None:
    async def scenario(client: Any, _server: Any) -> None:
        resp = await client.post("/invocations", data=b"x", headers={CUSTOM: "a=b"})
        assert resp.status == 200 and CUSTOM not in resp.headers

    sv.run_in_process(config(make_model("echo", sv.ECHO)), scenario)


def test_single_model_server_has_no_models_api(make_model: Any, sv: Any) -> None:
    async def scenario(client: Any, _server: Any) -> None:
        resp = await client.get("/models")
        assert resp.status == 404 and "--multi-model" in await resp.text()

    sv.run_in_process(config(make_model("echo", sv.ECHO)), scenario)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_hosts_are_accepted(host: str) -> None:
    assert check_loopback(host) == host


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "10.0.0.1", "example.com", ""])
def test_non_loopback_hosts_are_refused(host: str) -> None:
    with pytest.raises(NonLoopbackHost, match="loopback only"):
        check_loopback(host)
    with pytest.raises(NonLoopbackHost):
        ServerConfig(model="/x", host=host)


def test_config_rejects_model_with_multi_model_and_bad_numbers() -> None:
    with pytest.raises(ValueError, match="exclusive"):
        ServerConfig(model="/x", multi_model=True)
    with pytest.raises(ValueError, match="--workers"):
        ServerConfig(model="/x", workers=0)
    with pytest.raises(ValueError, match="--model-timeout"):
        ServerConfig(model="/x", model_timeout=0)
    assert ServerConfig().multi_model is True
