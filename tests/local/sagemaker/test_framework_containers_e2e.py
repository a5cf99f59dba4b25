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


PYTORCH = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1-cpu-py310"
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs catkit[pytorch]")


@needs_torch
def test_pytorch_container_defaults(h, tmp_path):
    """No script: default_pytorch_inference_handler.py's model_fn (TorchScript model.pt), input_fn
    (sagemaker_inference decoder: JSON/CSV -> FloatTensor, NPY -> from_numpy), predict_fn, output_fn."""
    import io

    import numpy as np
    import torch

    linear = torch.nn.Linear(2, 1)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[1.0, 10.0]]))
        linear.bias.fill_(0.5)
    torch.jit.script(linear).save(str(tmp_path / "model.pt"))
    url = h.backend.s3.put("models", "pt/model.tar.gz", tar_gz({"model.pt": (tmp_path / "model.pt").read_bytes()}))
    npy = io.BytesIO()
    np.save(npy, np.array([[1.0, 2.0]], dtype=np.float32))

    async def body(h):
        assert (await _endpoint(h, "pt", PYTORCH, url))["EndpointStatus"] == "InService"
        out = await h.invoke("pt", b"[[1, 2], [3, 4]]", ContentType="application/json")  # no Accept: JSON
        assert out["ContentType"] == "application/json" and json.loads(out["Body"]) == [[21.5], [43.5]]
        out = await h.invoke("pt", b"1,2", ContentType="text/csv", Accept="text/csv")  # one CSV row is 1-D
        assert out["ContentType"] == "text/csv" and out["Body"].decode().split() == ["21.5"]
        out = await h.invoke("pt", npy.getvalue(), ContentType="application/x-npy", Accept="application/x-npy")
        assert np.load(io.BytesIO(out["Body"])).tolist() == [[21.5]]
        # sagemaker_inference decoder: an unsupported type is UnsupportedFormatError, a 500 from Transformer.
        status, message = await _error(h, "pt", b"x", ContentType="image/png")
        assert status == 500 and "Content type image/png is not supported by this framework" in message

    h.run(body)


SDK_TFS_SCRIPT = """
import json

def input_handler(data, context):
    return json.dumps({"instances": json.loads(data.read().decode())})

def output_handler(response, context):
    if response.status_code != 200:
        raise ValueError(response.text)
    return json.dumps({"predictions": [p + 1000 for p in response.json()["predictions"]]}), "application/json"
"""
SDK_HF_SCRIPT = """
import json

def output_fn(prediction, accept):
    return json.dumps({"labels": [p["label"] for p in prediction]}), accept
"""
SDK_TORCH_SCRIPT = """
import os, torch
def model_fn(model_dir):
    return torch.jit.load(os.path.join(model_dir, "model.pt"))
def output_fn(prediction, accept):
    return '{"custom": %s}' % prediction.tolist(), "application/json"
"""
SDK_SCRIPT = """
import json, os, sys, tarfile, time
import catkit.local
catkit.local.use_local()
import boto3, sagemaker
from sagemaker.huggingface import HuggingFaceModel, HuggingFacePredictor
from sagemaker.pytorch import PyTorchModel
from sagemaker.tensorflow import TensorFlowModel, TensorFlowPredictor

work = sys.argv[1]
session = sagemaker.Session()
role = sagemaker.get_execution_role()
bucket = session.default_bucket()

def archive(name):
    path = os.path.join(work, name + ".tar.gz")
    with tarfile.open(path, "w:gz") as tar:
        for f in sorted(os.listdir(os.path.join(work, name))):
            tar.add(os.path.join(work, name, f), arcname=f)
    return session.upload_data(path, bucket=bucket, key_prefix="sdk/" + name)

tfm = TensorFlowModel(model_data=archive("tfs"), role=role, framework_version="2.16",
                      entry_point=os.path.join(work, "tfs_code", "inference.py"), sagemaker_session=session)
tfm.deploy(initial_instance_count=1, instance_type="ml.m5.large", endpoint_name="sdk-tfs", wait=False)
hfm = HuggingFaceModel(model_data=archive("bert"), role=role, transformers_version="4.37", pytorch_version="2.1",
                       py_version="py310", env={"HF_TASK": "text-classification"},
                       entry_point=os.path.join(work, "hf_inference.py"), sagemaker_session=session)
hfm.deploy(initial_instance_count=1, instance_type="ml.m5.large", endpoint_name="sdk-hf", wait=False)
ptm = PyTorchModel(model_data=archive("pt"), role=role, entry_point=os.path.join(work, "pt.py"),
                   framework_version="2.1", py_version="py310", sagemaker_session=session)
ptm.deploy(initial_instance_count=1, instance_type="ml.m5.large", endpoint_name="sdk-pt", wait=False)
sm = boto3.client("sagemaker")
out = {}
deadline = time.monotonic() + 150
for name in ("sdk-tfs", "sdk-hf", "sdk-pt"):
    while True:
        d = sm.describe_endpoint(EndpointName=name)
        if d["EndpointStatus"] in ("InService", "Failed") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    config = sm.describe_endpoint_config(EndpointConfigName=d["EndpointConfigName"])
    model = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])["PrimaryContainer"]
    out[name] = {"status": d["EndpointStatus"], "reason": d.get("FailureReason"), "image": model["Image"],
                 "submit": model.get("Environment", {}).get("SAGEMAKER_SUBMIT_DIRECTORY")}
if out["sdk-tfs"]["status"] == "InService":
    out["sdk-tfs"]["plain"] = TensorFlowPredictor("sdk-tfs", session).predict([[1, 2], [3, 4]])
    named = TensorFlowPredictor("sdk-tfs", session, model_name="scorer", model_version="1")
    out["sdk-tfs"]["named"] = named.predict([[1, 2]])
if out["sdk-hf"]["status"] == "InService":
    out["sdk-hf"]["labels"] = HuggingFacePredictor("sdk-hf", session).predict({"inputs": ["good movie", "bad"]})
if out["sdk-pt"]["status"] == "InService":
    r = boto3.client("sagemaker-runtime").invoke_endpoint(EndpointName="sdk-pt", Body=b"[[1.0, 1.0]]",
                                                          ContentType="application/json")
    out["sdk-pt"]["body"] = json.loads(r["Body"].read())
for name in out:
    sm.delete_endpoint(EndpointName=name)
print("RESULT " + json.dumps(out))
"""


@needs_tf
@needs_hf
@pytest.mark.skipif(importlib.util.find_spec("sagemaker") is None, reason="needs catkit[sdk2]")
def test_sdk_v2_tensorflow_hugging_face_and_pytorch_models(module_backend_factory, tmp_path, monkeypatch):
    """TensorFlowModel / HuggingFaceModel / PyTorchModel(entry_point=...).deploy as a user would: the SDK
    resolves the image URIs and repacks the script into the archive's code/; each script changes the
    output visibly, so the test fails if the container's defaults answer instead."""
    import subprocess
    import sys

    import torch

    sdk = importlib.import_module("sagemaker")
    if not sdk.__version__.startswith("2."):
        pytest.skip("TensorFlowModel/HuggingFaceModel are SageMaker SDK v2 classes")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backend = module_backend_factory(time_scale=600)
    _saved_model(tmp_path / "tfs" / "scorer" / "1")
    _tiny_bert(tmp_path / "bert")
    # python_service.py imports code/inference.py only (INFERENCE_SCRIPT_PATH): the entry point's file name
    # must be inference.py, as AWS's documentation of the TFS container says.
    (tmp_path / "tfs_code").mkdir()
    (tmp_path / "tfs_code" / "inference.py").write_text(SDK_TFS_SCRIPT)
    (tmp_path / "hf_inference.py").write_text(SDK_HF_SCRIPT)
    (tmp_path / "pt").mkdir()
    torch.jit.script(torch.nn.Linear(2, 1)).save(str(tmp_path / "pt" / "model.pt"))
    (tmp_path / "pt.py").write_text(SDK_TORCH_SCRIPT)
    keys = ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN", "AWS_PROFILE")
    env = {k: v for k, v in os.environ.items() if k not in keys}
    env.update(CATKIT_HOME=str(backend.home), SAGEMAKER_SUPPRESS_V2_WARNING="1")
    proc = subprocess.run([sys.executable, "-c", SDK_SCRIPT, str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=240, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.split("RESULT ", 1)[1])
    tfs, hf = out["sdk-tfs"], out["sdk-hf"]
    assert tfs["status"] == "InService", tfs
    assert "/tensorflow-inference:2.16" in tfs["image"]
    assert tfs["plain"] == {"predictions": pytest.approx([1020.1, 1040.3])}  # output_handler: +1000
    assert tfs["named"] == {"predictions": pytest.approx([1020.1])}  # tfs-model-name/-version attributes
    assert hf["status"] == "InService", hf
    assert "/huggingface-pytorch-inference:" in hf["image"]
    assert len(hf["labels"]["labels"]) == 2 and set(hf["labels"]["labels"]) <= {"NEG", "POS"}  # output_fn
    pt = out["sdk-pt"]
    assert pt["status"] == "InService" and pt["submit"] == "/opt/ml/model/code", pt
    assert "/pytorch-inference:2.1" in pt["image"] and list(pt["body"]) == ["custom"]  # output_fn
