"""The multi-model container API (SageMaker MMS contract), in process over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from catkit.serving.server import ServerConfig

TAGGED = """
from pathlib import Path

def model_fn(model_dir):
    return Path(model_dir, "tag.txt").read_text().strip()

def transform_fn(model, body, content_type, accept, context):
    return f"{model}:{context.model_name}:{context.target_model}:{body.decode()}", "text/plain"
"""


def mme(**kwargs: Any) -> ServerConfig:
    return ServerConfig(multi_model=True, **kwargs)


async def load(client: Any, name: str, url: Path | str) -> Any:
    return await client.post("/models", json={"model_name": name, "url": str(url)})


def test_empty_multi_model_server_is_healthy_and_lists_nothing(sv: Any) -> None:
    async def scenario(client: Any, _server: Any) -> None:
        assert (await client.get("/ping")).status == 200
        resp = await client.get("/models")
        assert resp.status == 200 and await resp.json() == {"models": []}
        resp = await client.post("/invocations", data=b"x")
        assert resp.status == 404 and "/models/{name}/invoke" in await resp.text()

    sv.run_in_process(mme(), scenario)


def test_load_describe_invoke_unload(make_model: Any, sv: Any) -> None:
    model_dir = make_model("m1", TAGGED, files={"tag.txt": "alpha"})

    async def scenario(client: Any, _server: Any) -> None:
        resp = await load(client, "m1", model_dir)
        assert resp.status == 200
        body = await resp.json()
        assert body["modelName"] == "m1" and body["modelUrl"] == str(model_dir)

        resp = await client.get("/models/m1")
        described = await resp.json()
        assert resp.status == 200 and described["modelName"] == "m1" and described["modelUrl"] == str(model_dir)
        assert described["memoryBytes"] >= described["diskBytes"] > 0
        assert (described["invocationCount"], described["lastUsedAt"]) == (0, None)

        resp = await client.post("/models/m1/invoke", data=b"hi",
                                 headers={"X-Amzn-SageMaker-Target-Model": "m1.tar.gz"})
        assert resp.status == 200 and await resp.text() == "alpha:m1:m1.tar.gz:hi"
        described = await (await client.get("/models/m1")).json()
        assert described["invocationCount"] == 1 and described["lastUsedAt"] > described["loadedAt"] - 1

        resp = await client.delete("/models/m1")
        assert resp.status == 200
        for method, path in (("GET", "/models/m1"), ("DELETE", "/models/m1"), ("POST", "/models/m1/invoke")):
            resp = await client.request(method, path, data=b"")
            assert resp.status == 404, (method, path)
            assert "not loaded" in await resp.text()
        assert (await load(client, "m1", model_dir)).status == 200  # the name is free again

    sv.run_in_process(mme(), scenario)


def test_names_with_slashes_and_target_model_routing_of_invocations(make_model: Any, sv: Any) -> None:
    model_dir = make_model("m2", TAGGED, files={"tag.txt": "beta"})
    name = "v1/model-b.tar.gz"

    async def scenario(client: Any, _server: Any) -> None:
        assert (await load(client, name, model_dir)).status == 200
        resp = await client.get(f"/models/{quote(name, safe='')}")
        assert resp.status == 200 and (await resp.json())["modelName"] == name
        resp = await client.post(f"/models/{quote(name, safe='')}/invoke", data=b"x")
        assert await resp.text() == "beta:v1/model-b.tar.gz:None:x"
        resp = await client.post("/invocations", data=b"y", headers={"X-Amzn-SageMaker-Target-Model": name})
        assert resp.status == 200 and await resp.text() == f"beta:{name}:{name}:y"
        resp = await client.post("/invocations", data=b"y", headers={"X-Amzn-SageMaker-Target-Model": "other"})
        assert resp.status == 404

    sv.run_in_process(mme(), scenario)


def test_loading_a_loaded_name_is_409(make_model: Any, sv: Any) -> None:
    model_dir = make_model("m", TAGGED, files={"tag.txt": "a"})

    async def scenario(client: Any, _server: Any) -> None:
        assert (await load(client, "m", model_dir)).status == 200
        resp = await load(client, "m", model_dir)
        assert resp.status == 409 and "already loaded" in await resp.text()

    sv.run_in_process(mme(), scenario)


def test_concurrent_loads_of_one_name_load_once(make_model: Any, tmp_path: Path, sv: Any) -> None:
    counter = tmp_path / "loads.txt"
    source = f"""
    import time

    def model_fn(model_dir):
        with open({str(counter)!r}, "a") as f:
            f.write("load\\n")
        time.sleep(0.2)
        return None

    def transform_fn(model, body, content_type, accept):
        return b"ok", "text/plain"
    """
    model_dir = make_model("once", source)

    async def scenario(client: Any, _server: Any) -> None:
        responses = await asyncio.gather(*(load(client, "once", model_dir) for _ in range(6)))
        assert sorted(r.status for r in responses) == [200] + [409] * 5
        assert counter.read_text().splitlines() == ["load"]

    sv.run_in_process(mme(), scenario)


def test_memory_budget_refuses_with_507_and_unload_frees_room(make_model: Any, sv: Any) -> None:
    models = [make_model(f"h{i}", sv.HUNGRY, files={"size_mb.txt": "40"}) for i in range(3)]

    async def scenario(client: Any, _server: Any) -> None:
        for i in range(2):
            resp = await load(client, f"h{i}", models[i])
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["memoryBytes"] >= 35 * 2**20  # measured RSS growth
        resp = await load(client, "h2", models[2])
        assert resp.status == 507
        assert "memory budget of 100.0 MiB" in await resp.text()
        assert (await client.get("/models/h2")).status == 404
        assert (await client.delete("/models/h0")).status == 200
        assert (await load(client, "h2", models[2])).status == 200
        resp = await client.post("/models/h2/invoke", data=b"")
        assert await resp.text() == str(40 * 2**20)

    sv.run_in_process(mme(memory_budget_mb=100), scenario)


def test_on_disk_size_is_the_floor_and_is_checked_before_loading(make_model: Any, tmp_path: Path,
                                                                   sv: Any) -> None:
    marker = tmp_path / "model_fn-ran"
    source = f"def model_fn(d):\n    open({str(marker)!r}, 'w').close()\n"
    model_dir = make_model("big", source)
    (model_dir / "weights.bin").write_bytes(b"\0" * (2 * 2**20))

    async def scenario(client: Any, _server: Any) -> None:
        resp = await load(client, "big", model_dir)
        assert resp.status == 507 and "size on disk" in await resp.text()
        assert not marker.exists()  # refused without running any model code

    sv.run_in_process(mme(memory_budget_mb=1), scenario)


def test_pagination_walks_all_models_in_name_order(make_model: Any, sv: Any) -> None:
    model_dir = make_model("p", TAGGED, files={"tag.txt": "p"})
    names = ["e", "a", "d", "c", "b"]

    async def scenario(client: Any, _server: Any) -> None:
        for name in names:
            assert (await load(client, name, model_dir)).status == 200
        seen: list[str] = []
        pages = 0
        token: str | None = None
        while True:
            params = {"limit": "2", **({"next_page_token": token} if token else {})}
            page = await (await client.get("/models", params=params)).json()
            pages += 1
            seen += [m["modelName"] for m in page["models"]]
            assert all(m["modelUrl"] == str(model_dir) for m in page["models"])
            token = page.get("nextPageToken")
            if token is None:
                break
        assert seen == sorted(names) and pages == 3
        for bad in ({"limit": "0"}, {"limit": "x"}, {"next_page_token": "%%%"}):
            assert (await client.get("/models", params=bad)).status == 400, bad

    sv.run_in_process(mme(), scenario)


def test_bad_load_requests_are_400_and_broken_models_500(make_model: Any, tmp_path: Path, sv: Any) -> None:
    broken = make_model("broken", "def model_fn(d):\n    raise RuntimeError('no weights')\n")

    async def scenario(client: Any, _server: Any) -> None:
        assert (await client.post("/models", data=b"not json")).status == 400
        assert (await client.post("/models", json=["m", "url"])).status == 400
        assert (await client.post("/models", json={"model_name": "x"})).status == 400
        resp = await load(client, "x", tmp_path / "missing")
        assert resp.status == 400 and "not a directory" in await resp.text()
        resp = await load(client, "bad\nname", broken)
        assert resp.status == 400
        resp = await load(client, "broken", broken)
        assert resp.status == 500 and "no weights" in await resp.text()
        assert json.loads(await (await client.get("/models")).read()) == {"models": []}

    sv.run_in_process(mme(), scenario)


def test_models_root_confines_model_urls(make_model: Any, tmp_path: Path, sv: Any) -> None:
    inside = make_model("inside", TAGGED, files={"tag.txt": "in"})
    outside = tmp_path / "elsewhere" / "m"
    outside.mkdir(parents=True)
    (outside / "code").mkdir()
    (outside / "code" / "inference.py").write_text("raise SystemExit('must not run')\n")

    async def scenario(client: Any, _server: Any) -> None:
        assert (await load(client, "in", inside)).status == 200
        resp = await load(client, "out", outside)
        assert resp.status == 400 and "outside the models root" in await resp.text()
        resp = await load(client, "sneaky", inside.parent / ".." / "elsewhere" / "m")
        assert resp.status == 400

    sv.run_in_process(mme(models_root=str(inside.parent)), scenario)
