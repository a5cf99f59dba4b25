"""build_cathat_archive: SageMaker layout, reuse of a trained model, same bytes, serves after extraction."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

from catkit.build import safe_extract
from catkit.examples.cathat.data import make_image
from catkit.examples.cathat.package import archive_name, build_cathat_archive
from catkit.examples.cathat.train import TrainResult

from .conftest import N_TRAIN, load_handler


def test_archive_layout_reuse_and_determinism(trained: TrainResult, tmp_path: Path) -> None:
    shutil.copytree(trained.model_dir, tmp_path / "cathat-v0")
    before = (tmp_path / "cathat-v0" / "model.joblib").read_bytes()
    archive = build_cathat_archive(tmp_path, 0, n_train=N_TRAIN)
    assert archive == tmp_path / archive_name(0) == tmp_path / "cathat-v0.tar.gz"
    assert (tmp_path / "cathat-v0" / "model.joblib").read_bytes() == before  # reused, not retrained
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        reqs = tar.extractfile("code/requirements.txt").read().decode()  # type: ignore[union-attr]
    assert names == sorted(names)
    assert {"model.joblib", "metadata.json", "code/inference.py", "code/features.py"} <= set(names)
    assert "pillow" in reqs.lower()
    first = archive.read_bytes()
    assert build_cathat_archive(tmp_path, 0, n_train=N_TRAIN).read_bytes() == first
    assert archive.stat().st_size < 300_000


def test_extracted_archive_serves_predictions(trained: TrainResult, tmp_path: Path) -> None:
    shutil.copytree(trained.model_dir, tmp_path / "cathat-v0")
    archive = build_cathat_archive(tmp_path, 0, n_train=N_TRAIN)
    model_dir = safe_extract(archive, tmp_path / "unpacked")
    handler = load_handler(model_dir, "cathat_handler_from_archive")
    model = handler.model_fn(str(model_dir))
    import io

    buf = io.BytesIO()
    make_image(31337, True).save(buf, "PNG")
    body, ctype = handler.output_fn(
        handler.predict_fn(handler.input_fn(buf.getvalue(), "image/png"), model), None
    )
    assert ctype == "application/json"
    assert json.loads(body)["label"] in ("hat", "no_hat")


def test_missing_or_stale_model_is_trained(tmp_path: Path) -> None:
    archive = build_cathat_archive(tmp_path, 3, n_train=200)
    meta = json.loads((tmp_path / "cathat-v3" / "metadata.json").read_text())
    assert meta["variant"] == 3 and meta["n_train"] == 200
    assert archive.name == "cathat-v3.tar.gz"
    build_cathat_archive(tmp_path, 3, n_train=240)  # different size: retrained
    assert json.loads((tmp_path / "cathat-v3" / "metadata.json").read_text())["n_train"] == 240
