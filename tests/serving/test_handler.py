"""Handler contract: code only from <model dir>/code/inference.py, SageMaker's defaults, context."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest

from catkit.serving.errors import BadRequest, ModelLoadError, UnsupportedContentType
from catkit.serving.handler import ModelHandler


@pytest.fixture(autouse=True)
def restore_sys_path() -> Any:
    """Single-model loading leaves code/ on sys.path (as SageMaker does); undo that per test."""
    path, modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        if name.startswith(("catkit_model_code_", "helper_mod_", "shared_name_", "custom_mod_")):
            sys.modules.pop(name, None)


class Doubler:
    """A picklable 'model' with predict (what the default predict_fn calls)."""

    def predict(self, data: Any) -> Any:
        return np.asarray(data) * 2


def test_defaults_load_model_joblib_and_use_predict(tmp_path: Path) -> None:
    joblib.dump(Doubler(), tmp_path / "model.joblib")
    handler = ModelHandler.load(tmp_path)
    result = handler.invoke(b"[[1, 2]]", "application/json", None)
    assert (result.body, result.content_type) == (b"[[2, 4]]", "application/json")
    result = handler.invoke(b"1,2\n3,4", "text/csv", "application/json")
    assert json.loads(result.body) == [[2.0, 4.0], [6.0, 8.0]]


def test_no_model_fn_and_no_model_joblib_is_a_clear_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"no model\.joblib"):
        ModelHandler.load(tmp_path)


def test_missing_model_dir_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        ModelHandler.load(tmp_path / "nope")


def test_callable_model_is_called_and_default_codecs_round_trip(make_model: Any, sv: Any) -> None:
    handler = ModelHandler.load(make_model("identity", sv.IDENTITY))
    assert handler.invoke(b"[1, 2]", "application/json", "text/csv").body == b"1\n2\n"
    npy = handler.invoke(b"1,2", "text/csv", "application/x-npy")
    assert npy.content_type == "application/x-npy" and npy.body.startswith(b"\x93NUMPY")


def test_unsupported_content_type_from_default_input_fn(make_model: Any, sv: Any) -> None:
    handler = ModelHandler.load(make_model("identity", sv.IDENTITY))
    with pytest.raises(UnsupportedContentType):
        handler.invoke(b"GIF89a", "image/gif", None)


def test_sibling_modules_import_from_code_dir(make_model: Any) -> None:
    handler = ModelHandler.load(make_model(
        "sib",
        "from helper_mod_sib import SCALE\n\ndef model_fn(d):\n    return SCALE\n"
        "def transform_fn(m, body, ct, accept):\n    return str(m), 'text/plain'\n",
        files={"code/helper_mod_sib.py": "SCALE = 41\n"},
    ))
    assert handler.invoke(b"", "text/plain", None).body == b"41"


def test_code_is_imported_only_from_the_model_dir(make_model: Any, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # An inference.py in the working directory, on sys.path and in SAGEMAKER_SUBMIT_DIRECTORY
    # must all be ignored: the model dir has no code/, so the defaults (model.joblib) apply.
    rogue = tmp_path / "rogue"
    rogue.mkdir()
    (rogue / "inference.py").write_text("raise SystemExit('rogue code ran')\n")
    monkeypatch.chdir(rogue)
    monkeypatch.syspath_prepend(str(rogue))
    monkeypatch.setenv("SAGEMAKER_SUBMIT_DIRECTORY", str(rogue))
    monkeypatch.setenv("SAGEMAKER_PROGRAM", "inference.py")
    model_dir = make_model("plain")
    joblib.dump(Doubler(), model_dir / "model.joblib")
    handler = ModelHandler.load(model_dir)
    assert handler.module is None
    assert handler.invoke(b"[3]", "application/json", None).body == b"[6]"


def test_symlinked_inference_outside_model_dir_is_refused(make_model: Any, tmp_path: Path) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("def model_fn(d):\n    return 1\n")
    model_dir = make_model("linked")
    (model_dir / "code").mkdir()
    (model_dir / "code" / "inference.py").symlink_to(outside)
    with pytest.raises(ModelLoadError, match="outside the model directory"):
        ModelHandler.load(model_dir)


def test_symlinked_code_dir_outside_model_dir_is_refused(make_model: Any, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "inference.py").write_text("def model_fn(d):\n    return 1\n")
    model_dir = make_model("linkdir")
    (model_dir / "code").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(ModelLoadError, match="outside the model directory"):
        ModelHandler.load(model_dir)


def test_symlinked_model_joblib_outside_model_dir_is_refused(make_model: Any, tmp_path: Path) -> None:
    joblib.dump(Doubler(), tmp_path / "elsewhere.joblib")
    model_dir = make_model("linkedjoblib")
    (model_dir / "model.joblib").symlink_to(tmp_path / "elsewhere.joblib")
    with pytest.raises(ModelLoadError, match="must live inside the model archive"):
        ModelHandler.load(model_dir)


def test_import_error_names_the_script(make_model: Any) -> None:
    with pytest.raises(ModelLoadError, match=r"inference\.py failed: ZeroDivisionError"):
        ModelHandler.load(make_model("bad", "x = 1 / 0\n"))


def test_model_fn_error_is_a_load_error(make_model: Any) -> None:
    with pytest.raises(ModelLoadError, match=r"model_fn.*OSError: weights missing"):
        ModelHandler.load(make_model("bad", "def model_fn(d):\n    raise OSError('weights missing')\n"))


def test_transform_fn_with_input_fn_is_refused_like_the_toolkit(make_model: Any) -> None:
    source = ("def model_fn(d):\n    return 1\ndef input_fn(b, c):\n    return b\n"
              "def transform_fn(m, b, c, a):\n    return b\n")
    with pytest.raises(ModelLoadError, match="transform_fn together with"):
        ModelHandler.load(make_model("both", source))


def test_context_parameter_reads_and_sets_custom_attributes(make_model: Any) -> None:
    source = """
    def model_fn(model_dir):
        return None

    def input_fn(body, content_type, context):
        return context.custom_attributes

    def predict_fn(data, model):
        return {"seen": data}

    def output_fn(prediction, accept, context):
        context.response_custom_attributes = "trace=" + (prediction["seen"] or "none")
        import json
        return json.dumps(prediction)
    """
    handler = ModelHandler.load(make_model("ctx", source))
    result = handler.invoke(b"{}", "application/json", None, "c000b4f9-df62")
    assert json.loads(result.body) == {"seen": "c000b4f9-df62"}
    assert result.custom_attributes == "trace=c000b4f9-df62"
    assert result.content_type == "application/json"


def test_json_and_csv_bodies_arrive_as_str_other_types_as_bytes(make_model: Any) -> None:
    source = """
    def model_fn(d):
        return None
    def transform_fn(model, body, content_type, accept):
        return f"{type(body).__name__}:{body if isinstance(body, str) else body.decode()}", "text/plain"
    """
    handler = ModelHandler.load(make_model("types", source))
    assert handler.invoke(b"[1]", "application/json", None).body == b"str:[1]"
    assert handler.invoke(b"1,2", "text/csv", None).body == b"str:1,2"
    assert handler.invoke(b"[1]", "application/json; charset=utf-8", None).body == b"bytes:[1]"
    assert handler.invoke(b"raw", "application/octet-stream", None).body == b"bytes:raw"
    with pytest.raises(BadRequest, match="not valid UTF-8"):
        handler.invoke(b"\xff", "text/csv", None)


def test_pre_model_fn_model_fn_context_and_warmup_run_in_order(make_model: Any) -> None:
    source = """
    calls = []
    def pre_model_fn(model_dir):
        calls.append("pre")
    def model_fn(model_dir, context):
        calls.append("model:" + context.system_properties["model_dir"].rsplit("/", 1)[-1])
        return calls
    def model_warmup_fn(model_dir, model):
        calls.append("warmup")
    def transform_fn(model, body, content_type, accept):
        return ",".join(model), "text/plain"
    """
    handler = ModelHandler.load(make_model("lifecycle", source))
    assert handler.invoke(b"", "", None).body == b"pre,model:lifecycle,warmup"


def test_default_accept_from_environment(make_model: Any, sv: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "text/csv")
    handler = ModelHandler.load(make_model("identity", sv.IDENTITY))
    result = handler.invoke(b"[1, 2]", "application/json", None)
    assert (result.body, result.content_type) == (b"1\n2\n", "text/csv")


def test_output_fn_result_tuple_sets_content_type_and_str_is_utf8(make_model: Any) -> None:
    source = """
    def model_fn(d):
        return None
    def predict_fn(data, model):
        return "héllo"
    def output_fn(prediction, accept):
        return prediction
    """
    handler = ModelHandler.load(make_model("str", source))
    result = handler.invoke(b"[1]", "application/json", "text/plain")
    assert (result.body, result.content_type) == ("héllo".encode(), "text/plain")


def test_multi_model_loading_keeps_same_named_siblings_apart(make_model: Any) -> None:
    handler_src = ("from shared_name_xyz import VALUE\n\ndef model_fn(d):\n    return VALUE\n"
                   "def transform_fn(m, b, c, a):\n    return m, 'text/plain'\n")
    first = make_model("a", handler_src, files={"code/shared_name_xyz.py": "VALUE = 'from-a'\n"})
    second = make_model("b", handler_src, files={"code/shared_name_xyz.py": "VALUE = 'from-b'\n"})
    path_before = list(sys.path)
    a = ModelHandler.load(first, keep_code_on_path=False)
    b = ModelHandler.load(second, keep_code_on_path=False)
    assert a.invoke(b"", "", None).body == b"from-a"
    assert b.invoke(b"", "", None).body == b"from-b"
    assert sys.path == path_before
    assert "shared_name_xyz" not in sys.modules


def test_default_model_fn_unpickles_classes_from_sibling_modules_in_multi_model_mode(
        make_model: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    model_dir = make_model("pickled", "# defaults only; custom_mod_q.py holds the model class\n", files={
        "code/custom_mod_q.py": "class Tripler:\n    def predict(self, data):\n        return data * 3\n",
    })
    monkeypatch.syspath_prepend(str(model_dir / "code"))
    import custom_mod_q  # type: ignore[import-not-found]

    joblib.dump(custom_mod_q.Tripler(), model_dir / "model.joblib")
    del sys.modules["custom_mod_q"]
    sys.path.remove(str(model_dir / "code"))

    handler = ModelHandler.load(model_dir, keep_code_on_path=False)
    assert handler.invoke(b"[1, 2]", "application/json", None).body == b"[3, 6]"
    assert "custom_mod_q" not in sys.modules
    assert str(model_dir / "code") not in sys.path
