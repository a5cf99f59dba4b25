"""Image URI -> emulated container, the toolkits' exact codecs, workers per instance type, and the
TF Serving / Hugging Face request conversions (no framework needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from catkit.local.fleet.launch_plan import code_source, workers_for
from catkit.serving import toolkit_codecs as tc
from catkit.serving.containers import container_for_image, repository, script_environment, user_program
from catkit.serving.hub_profiles import (
    hf_decode,
    infer_task,
    mms_error,
    tfs_attributes,
    tfs_request,
    tfs_response_type,
)
from catkit.serving.tfs_rest import find_models
from catkit.serving.xgboost_algorithm import content_kind


@pytest.mark.parametrize(("image", "kind"), [
    ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3", "sklearn"),
    ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1", "xgboost"),
    ("811284229777.dkr.ecr.us-east-1.amazonaws.com/xgboost:latest", "xgboost"),
    ("763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1-cpu-py310", "pytorch"),
    ("763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-inference:2.13-cpu", "tensorflow"),
    ("763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:2.1-cpu@sha256:ab", "huggingface"),
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com/sklearn:1.2-1", "custom"),
    (None, "custom"),
])
def test_container_kind_from_image(image, kind):
    assert container_for_image(image).name == kind


def test_repository_and_script_rules():
    assert repository("a.dkr.ecr.r.amazonaws.com/team/sagemaker-xgboost:1.7-1") == "sagemaker-xgboost"
    sk, xgb, pt = (container_for_image(f"x/{r}:1") for r in ("sagemaker-scikit-learn", "xgboost", "pytorch-inference"))
    assert user_program(sk, {}) is None and user_program(xgb, {}) is None  # no default: sagemaker-containers
    assert user_program(pt, {}) == "inference.py"  # sagemaker-inference-toolkit default
    assert user_program(sk, {}, multi_model=True) == "inference.py"
    assert script_environment("x/sagemaker-scikit-learn:1")["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    assert script_environment("x/my-algo:1") == {}
    assert code_source({"SAGEMAKER_SUBMIT_DIRECTORY": "s3://b/k/sourcedir.tar.gz"}, "c").s3_url
    assert code_source({"SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code/"}, "c").s3_url is None
    with pytest.raises(ValueError, match="path on the local machine"):
        code_source({"SAGEMAKER_SUBMIT_DIRECTORY": "file:///home/me/src"}, "c")


def test_toolkit_decoders_keep_aws_shapes():
    assert tc.toolkit_decode("1,2,3", "text/csv").shape == (3,)  # genfromtxt: one row is 1-D
    assert tc.toolkit_decode("1,2\n3,4", "text/csv").shape == (2, 2)
    assert tc.containers_decode("1,2,3", "text/csv").shape == (3,)  # csv.reader + squeeze
    assert tc.containers_decode("1\n2\n3", "text/csv").shape == (3,)
    assert tc.containers_decode("1,2", "text/csv").dtype == np.float64
    assert tc.containers_decode("a,b", "text/csv").dtype.kind == "U"  # strings stay strings
    with pytest.raises(tc.UnsupportedFormatError, match="application/json; charset=utf-8 is not supported"):
        tc.toolkit_decode("[1]", "application/json; charset=utf-8")  # exact media types


def test_toolkit_encoders_and_accept():
    assert tc.toolkit_encode(np.array([1.5, 2.0]), "text/csv") == "1.5\n2.0\n"
    assert tc.containers_encode([1, 2], "text/csv") == "1\n2\n"  # 1-D: one column
    assert tc.containers_encode([[1, 2]], "text/csv") == "1,2\n"
    assert tc.default_accept(None, None) == "application/json"
    assert tc.default_accept("*/*", "text/csv") == "text/csv"
    assert tc.default_accept("text/csv, */*", None) == "text/csv, */*"  # kept as sent
    assert tc.toolkit_output([1], "application/x-foo, application/json")[1] == "application/json"
    with pytest.raises(tc.UnsupportedFormatError):
        tc.toolkit_output([1], "application/json;q=0.9")  # no quality values in the toolkit


def test_workers_per_instance_type():
    assert workers_for("ml.g5.2xlarge", {}, {}) == 8
    assert workers_for("ml.m5.large", {}, {}) == 2
    assert workers_for("ml.m5.24xlarge", {}, {}) == 16  # capped
    assert workers_for("ml.m5.24xlarge", {}, {"CATKIT_MAX_MODEL_SERVER_WORKERS": "32"}) == 32
    assert workers_for("ml.m5.xlarge", {"SAGEMAKER_MODEL_SERVER_WORKERS": "3"}, {}) == 3
    assert workers_for("ml.m5.large", {"SAGEMAKER_MODEL_SERVER_WORKERS": "5"}, {}) == 2  # the type's vCPUs
    assert workers_for("ml.m5.large", {"SAGEMAKER_MODEL_SERVER_WORKERS": "1000"}, {}) == 2
    with pytest.raises(ValueError, match="SAGEMAKER_MODEL_SERVER_WORKERS"):
        workers_for("ml.m5.large", {"SAGEMAKER_MODEL_SERVER_WORKERS": "0"}, {})


def test_xgboost_content_types():
    assert content_kind(None) == "libsvm"
    assert content_kind("text/csv; label_size=1") == "csv"
    with pytest.raises(ValueError, match="label_size must be equal to 1"):
        content_kind("text/csv; label_size=2")
    with pytest.raises(ValueError, match="is not an accepted ContentType"):
        content_kind("application/json")


def test_tfs_and_huggingface_request_conversions():
    assert tfs_request('{"instances": [1]}', "application/json") == '{"instances": [1]}'
    assert json.loads(tfs_request("[1, 2]", "application/json")) == {"instances": [[1, 2]]}
    assert json.loads(tfs_request("[[1, 2]]", "application/json")) == {"instances": [[1, 2]]}
    assert json.loads(tfs_request("1,2\n3,4", "text/csv")) == {"instances": [[1, 2], [3, 4]]}
    assert json.loads(tfs_request('{"a": 1}\n{"a": 2}', "application/jsonlines")) == {"instances": [{"a": 1}, {"a": 2}]}
    with pytest.raises(Exception, match="Unsupported Media Type: image/png"):
        tfs_request("x", "image/png")
    assert hf_decode("inputs\nhello\nworld", "text/csv") == {"inputs": ["hello", "world"]}
    assert hf_decode('{"inputs": "hi"}', "application/json") == {"inputs": "hi"}


def test_tfs_csv_quoting_and_json_lines_follow_the_js():
    # csv_request: a non-numeric first field quotes the first comma only (JS String.replace).
    assert json.loads(tfs_request("a,b\nc,d", "text/csv")) == {"instances": [["a", "b"], ["c", "d"]]}
    assert json.loads(tfs_request("x", "text/csv")) == {"instances": ["x"]}
    # json_lines_request: one line is not wrapped in [...].
    assert json.loads(tfs_request("[1, 2] ", "application/jsonlines")) == {"instances": [[1, 2]]}
    assert tfs_request("[1] [2]", "application/json") == '{"instances":[1] [2]}'  # invalid JSON: TFS says 400
    with pytest.raises(Exception, match="Unsupported Media Type: Unknown"):
        tfs_request("[1]", None)
    with pytest.raises(Exception, match="application/json; charset=utf-8"):  # exact match only
        tfs_request("[1]", "application/json; charset=utf-8")


def test_tfs_custom_attributes_and_response_type():
    assert tfs_attributes("x=1,tfs-model-name=a,tfs-model-version=2") == {"tfs-model-name": "a", "tfs-model-version": "2"}
    assert tfs_attributes(None) == {}
    assert tfs_response_type(None) == "application/json"
    assert tfs_response_type("text/csv") == "application/json"  # nginx default_type
    assert tfs_response_type("application/jsonlines") == "application/jsonlines"
    assert tfs_response_type("text/csv, application/json") == "text/csv"  # the first entry, as the JS does


def test_tfs_model_discovery(tmp_path):
    for rel in ("a/1", "a/2", "b/10", "3", "flat", "c/v1"):
        (tmp_path / rel).mkdir(parents=True)
        (tmp_path / rel / "saved_model.pb").write_bytes(b"")
    models = find_models(tmp_path)
    assert {name: sorted(v) for name, v in models.items()} == {"a": [1, 2], "b": [10], "model": [3]}
    assert find_models(tmp_path / "flat") == {}


def test_huggingface_rules(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TASK", raising=False)
    with pytest.raises(ValueError, match="correct CSV with Header columns"):
        hf_decode("hello\nworld", "text/csv")
    assert hf_decode("question,context\nq,c", "text/csv") == {"inputs": [{"question": "q", "context": "c"}]}
    monkeypatch.setenv("HF_TASK", "zero-shot-classification")
    with pytest.raises(ValueError, match="not support with zero-shot-classification"):
        hf_decode("inputs\nx", "text/csv")
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["DistilBertForTokenClassification"]}))
    assert infer_task(tmp_path / "config.json") == "token-classification"
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["Unheard"]}))
    with pytest.raises(ValueError, match="Use env `HF_TASK` to define your task"):
        infer_task(tmp_path / "config.json")
    body = mms_error(400, "'str' object has no attribute 'pop'")
    assert body.startswith('{\n  "code": 400,\n  "type": "InternalServerException",')
    assert "\\u0027str\\u0027" in body and json.loads(body)["message"] == "'str' object has no attribute 'pop'"
