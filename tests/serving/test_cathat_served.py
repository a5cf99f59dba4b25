"""The cat-hat example's code/inference.py served by the model server (the handler contract end to end)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest

from catkit.serving.server import ServerConfig

train_module = pytest.importorskip("catkit.examples.cathat.train")
data_module = pytest.importorskip("catkit.examples.cathat.data")


@pytest.fixture(scope="module")
def cathat_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = train_module.train(tmp_path_factory.mktemp("cathat") / "model", n_train=40, n_test=10, n_jobs=1)
    return Path(result.model_dir)


def png(seed: int, hat: bool) -> bytes:
    buffer = io.BytesIO()
    data_module.make_image(seed, hat, 64).save(buffer, format="PNG")
    return buffer.getvalue()


def test_single_model_png_json_and_415(cathat_dir: Path, sv: Any) -> None:
    async def scenario(client: Any, _server: Any) -> None:
        resp = await client.post("/invocations", data=png(1, True), headers={"Content-Type": "image/png"})
        assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
        body = json.loads(await resp.read())
        assert body["label"] in ("hat", "no_hat") and 0.5 <= body["confidence"] <= 1.0

        encoded = base64.b64encode(png(2, False)).decode()
        resp = await client.post("/invocations", data=json.dumps({"instances": [encoded, encoded]}),
                                 headers={"Content-Type": "application/json"})  # reaches input_fn as str
        assert resp.status == 200 and len(json.loads(await resp.read())) == 2

        resp = await client.post("/invocations", data=b"hello", headers={"Content-Type": "text/plain"})
        assert resp.status == 415
        resp = await client.post("/invocations", data=png(3, True),
                                 headers={"Content-Type": "image/png", "Accept": "text/csv"})
        assert resp.status == 415
        resp = await client.post("/invocations", data=b"not a png", headers={"Content-Type": "image/png"})
        assert resp.status == 500 and "not a PNG or JPEG" in await resp.text()

    sv.run_in_process(ServerConfig(model=str(cathat_dir)), scenario)


def test_two_cathat_models_in_one_multi_model_server(cathat_dir: Path, sv: Any) -> None:
    async def scenario(client: Any, _server: Any) -> None:
        for name in ("cat-a", "cat-b"):
            resp = await client.post("/models", json={"model_name": name, "url": str(cathat_dir)})
            assert resp.status == 200, await resp.text()
            resp = await client.post(f"/models/{name}/invoke", data=png(4, True),
                                     headers={"Content-Type": "image/png"})
            assert resp.status == 200 and "label" in json.loads(await resp.read())

    sv.run_in_process(ServerConfig(multi_model=True), scenario)
