"""TensorFlow Serving and Hugging Face containers served for real, with the framework installed.

Marked ``frameworks``: they run in ``make test-frameworks`` (a venv with tensorflow-cpu,
transformers and the CPU build of torch) and skip where the framework is absent (``make test``).
Each case pins a behaviour of AWS's container source, named beside it (see
catkit/serving/hub_profiles.py and tfs_rest.py for the functions each rule follows). Offline: the
SavedModel and the tiny BERT classifier (random weights, a WordPiece vocab written here) are built in
the test.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from catkit.local.errors import AwsError
from catkit.testing import model_archive, tar_gz

pytestmark = pytest.mark.frameworks

needs_tf = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs catkit[tensorflow]")
needs_hf = pytest.mark.skipif(
    importlib.util.find_spec("transformers") is None or importlib.util.find_spec("torch") is None,
    reason="needs catkit[huggingface]")

# What the SageMaker SDK v2 resolves for us-east-1 (image_uris.retrieve(..., image_scope="inference")).
TFS = "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-inference:2.16-cpu"
HF = "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:2.1-transformers4.37-cpu-py310-ubuntu22.04"


def _files(root: Path, prefix: str = "") -> dict[str, bytes]:
    return {prefix + str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _saved_model(path: Path) -> None:
    """y = x . [0.1, 10] (serving_default, one output); "pair": two outputs."""
    import tensorflow as tf

    class Scorer(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = tf.Variable([0.1, 10.0])

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
        def score(self, x):
            return {"y": tf.reduce_sum(x * self.w, axis=1)}

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
        def pair(self, x):
            return {"s": tf.reduce_sum(x * self.w, axis=1), "first": x[:, 0]}

    m = Scorer()
    tf.saved_model.save(m, str(path), signatures={"serving_default": m.score, "pair": m.pair})


async def _endpoint(h, name, image, url, env=None):
    container = {"Image": image, "ModelDataUrl": url, **({"Environment": env} if env else {})}
    await h.sm("CreateModel", ModelName=f"{name}-m", PrimaryContainer=container,
               ExecutionRoleArn="arn:aws:iam::123456789012:role/R")
    await h.sm("CreateEndpointConfig", EndpointConfigName=f"{name}-c", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": f"{name}-m", "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    await h.sm("CreateEndpoint", EndpointName=name, EndpointConfigName=f"{name}-c")
    return await h.wait(name, ("InService", "Failed"), timeout=120)


async def _error(h, name, body, **params):
    with pytest.raises(AwsError) as e:
        await h.invoke(name, body, **params)
    return e.value.fields["OriginalStatusCode"], e.value.fields["OriginalMessage"]


TFS_HANDLERS = """
import json

def input_handler(data, context):
    if context.request_content_type == "text/csv":
        rows = [[float(v) for v in line.split(",")] for line in data.read().decode().splitlines()]
        return json.dumps({"instances": rows})
    raise ValueError("unsupported " + context.request_content_type)

def output_handler(response, context):
    if response.status_code != 200:
        raise ValueError(response.content.decode())
    doubled = [p * 2 for p in response.json()["predictions"]]
    return json.dumps({"doubled": doubled, "uri": context.rest_uri, "accept": context.accept_header}), "application/json"
"""
TFS_HANDLER = """
import requests

def handler(data, context):
    response = requests.post(context.rest_uri, data=data.read())
    return response.content, "application/x-tfs-" + str(response.status_code)
"""


@needs_tf
def test_tensorflow_serving_container(h, tmp_path):
    _saved_model(tmp_path / "scorer" / "1")
    model = _files(tmp_path / "scorer", "scorer/")
    url = h.backend.s3.put("models", "tfs/model.tar.gz", tar_gz(model))
    scripted = h.backend.s3.put("models", "tfs/handlers.tar.gz", model_archive(TFS_HANDLERS, model))
    raw = h.backend.s3.put("models", "tfs/handler.tar.gz", model_archive(TFS_HANDLER, model))
    unversioned = h.backend.s3.put("models", "tfs/flat.tar.gz", tar_gz(_files(tmp_path / "scorer" / "1")))

    async def body(h):
        d = await _endpoint(h, "tfs", TFS, url)
        assert d["EndpointStatus"] == "InService", d

        async def predict(payload, ct="application/json", **kw):
            out = await h.invoke("tfs", payload, ContentType=ct, **kw)
            return json.loads(out["Body"]), out["ContentType"]

        # tensorflowServing.js generic_json_request: a list of lists is the instances; float32 printed as TFS does.
        assert await predict(b"[[1, 2], [3, 4]]") == ({"predictions": [20.1, 40.3]}, "application/json")
        assert (await predict(b"[1, 2]"))[0] == {"predictions": [20.1]}  # one instance, wrapped in [...]
        assert (await predict(b'{"instances": [[1, 2]]}'))[0] == {"predictions": [20.1]}  # is_tfs_json: as is
        assert (await predict(b"1,2\n3,4", "text/csv"))[0] == {"predictions": [20.1, 40.3]}  # csv_request
        assert (await predict(b"[1, 2]\n[3, 4]", "application/jsonlines"))[0] == {"predictions": [20.1, 40.3]}
        # TFS REST (api_rest.md): several outputs -> one object per instance; columnar inputs -> outputs.
        assert (await predict(b'{"signature_name": "pair", "instances": [[1, 2]]}'))[0] == {
            "predictions": [{"first": 1.0, "s": 20.1}]}
        assert (await predict(b'{"inputs": [[1, 2]]}'))[0] == {"outputs": [20.1]}
        # tfs_json_request: the first Accept entry when the Accept names a JSON type, else application/json.
        assert (await predict(b"[1, 2]", Accept="application/jsonlines"))[1] == "application/jsonlines"
        assert (await predict(b"[1, 2]", Accept="text/csv"))[1] == "application/json"
        # parse_custom_attributes -> make_tfs_uri: model name and version; unknown ones are TFS's 404.
        assert (await predict(b"[1, 2]", CustomAttributes="tfs-model-name=scorer,tfs-model-version=1"))[0] == {
            "predictions": [20.1]}
        status, message = await _error(h, "tfs", b"[1, 2]", ContentType="application/json",
                                       CustomAttributes="tfs-model-version=7")
        assert status == 404 and "Servable not found" in json.loads(message)["error"]
        # invocations: any other Content-Type is 415 from nginx, with its JSON error.
        status, message = await _error(h, "tfs", b"\x89PNG", ContentType="image/png")
        assert (status, json.loads(message)) == (415, {"error": "Unsupported Media Type: image/png"})
        # A request TFS cannot run: its 400 {"error": ...} passes through.
        status, message = await _error(h, "tfs", b'[["a", "b"]]', ContentType="application/json")
        assert status == 400 and "error" in json.loads(message)

        # code/inference.py: python_service.py runs input_handler -> POST to TFS -> output_handler.
        d = await _endpoint(h, "tfs-py", TFS, scripted)
        assert d["EndpointStatus"] == "InService", d
        out = await h.invoke("tfs-py", b"1,2\n3,4", ContentType="text/csv")
        doc = json.loads(out["Body"])
        assert doc["doubled"] == pytest.approx([40.2, 80.6]) and out["ContentType"] == "application/json"
        assert doc["uri"].endswith("/v1/models/scorer:predict") and doc["accept"] == "application/json"
        status, message = await _error(h, "tfs-py", b"[1]", ContentType="application/json")  # a handler raised
        assert (status, json.loads(message)) == (500, {"error": "unsupported application/json"})
        # handler(data, context) posting to context.rest_uri itself.
        assert (await _endpoint(h, "tfs-h", TFS, raw))["EndpointStatus"] == "InService"
        out = await h.invoke("tfs-h", b'{"instances": [[1, 2]]}', ContentType="application/json")
        assert out["ContentType"] == "application/x-tfs-200" and json.loads(out["Body"]) == {"predictions": [20.1]}
        # serve.py _create_tfs_config: saved_model.pb outside a numeric version directory is no model.
        d = await _endpoint(h, "tfs-flat", TFS, unversioned)
        assert d["EndpointStatus"] == "Failed" and "no SavedModel bundles found!" in d["FailureReason"]

    h.run(body)


def _tiny_bert(path: Path) -> None:
    """A 1-layer BERT text classifier with random weights and a 12-word WordPiece vocab."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    torch.manual_seed(0)
    path.mkdir(parents=True)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "good", "bad", "movie", "the", "a"]
    (path / "vocab.txt").write_text("\n".join(words) + "\n")
    config = BertConfig(vocab_size=len(words), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=32, num_labels=2,
                        id2label={0: "NEG", 1: "POS"}, label2id={"NEG": 0, "POS": 1})
    BertForSequenceClassification(config).save_pretrained(path)
    BertTokenizer(vocab_file=str(path / "vocab.txt")).save_pretrained(path)


@needs_hf
def test_hugging_face_container(h, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the server processes inherit it: nothing may reach the Hub
    _tiny_bert(tmp_path / "bert")
    url = h.backend.s3.put("models", "hf/model.tar.gz", tar_gz(_files(tmp_path / "bert")))

    async def body(h):
        d = await _endpoint(h, "hf", HF, url, {"HF_TASK": "text-classification"})
        assert d["EndpointStatus"] == "InService", d
        # handle: no Accept -> application/json; predict: inputs + parameters reach the pipeline.
        out = await h.invoke("hf", json.dumps({"inputs": "hello world"}).encode(), ContentType="application/json")
        one = json.loads(out["Body"])
        assert out["ContentType"] == "application/json"
        assert len(one) == 1 and one[0]["label"] in ("NEG", "POS") and 0.0 <= one[0]["score"] <= 1.0
        out = await h.invoke("hf", json.dumps({"inputs": "hello world", "parameters": {"top_k": 2}}).encode(),
                             ContentType="application/json", Accept="*/*")
        both = json.loads(out["Body"])
        assert out["ContentType"] == "application/json" and sorted(r["label"] for r in both) == ["NEG", "POS"]
        # decoder_encoder.decode_csv: an "inputs" header column -> {"inputs": [...]}, one result per row.
        out = await h.invoke("hf", b"inputs\ngood movie\nbad movie\n", ContentType="text/csv")
        assert len(json.loads(out["Body"])) == 2
        # decoder_encoder.encode_csv: a DictWriter over the result's dicts.
        out = await h.invoke("hf", b'{"inputs": "good"}', ContentType="application/json", Accept="text/csv")
        assert out["ContentType"] == "text/csv" and out["Body"].decode().splitlines()[0] == "label,score"
        # Every failure: PredictionException(str(e), 400), MMS's JSON error body.
        for payload, ct, extra, word in (
            (b"good movie\n", "text/csv", {}, "correct CSV with Header columns"),
            (b'"hello"', "application/json", {}, "\\u0027str\\u0027 object has no attribute \\u0027pop\\u0027"),
            (b"<x/>", "application/xml", {}, "Content type application/xml is not supported"),
            (b'{"inputs": "hi"}', "application/json", {"Accept": "application/xml"}, "application/xml"),
        ):
            status, message = await _error(h, "hf", payload, ContentType=ct, **extra)
            assert status == 400 and word in message, message
            doc = json.loads(message)
            assert (doc["code"], doc["type"]) == (400, "InternalServerException")
        # HuggingFaceHandlerService.load without HF_TASK: the task from config.json's architecture.
        d = await _endpoint(h, "hf-infer", HF, url)
        assert d["EndpointStatus"] == "InService", d
        out = await h.invoke("hf-infer", b'{"inputs": "the movie"}', ContentType="application/json")
        assert json.loads(out["Body"])[0]["label"] in ("NEG", "POS")
        # mms_model_server: HF_MODEL_ID downloads from the Hub, which is not there: the load fails saying so.
        d = await _endpoint(h, "hf-hub", HF, url, {"HF_TASK": "text-classification", "HF_MODEL_ID": "nobody/nothing"})
        assert d["EndpointStatus"] == "Failed" and "no Hugging Face Hub" in d["FailureReason"]

    assert os.environ["HF_HUB_OFFLINE"] == "1"
    h.run(body)
