"""Training reaches the accuracy target on held-out images and writes a small, servable model dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catkit.examples.cathat import features
from catkit.examples.cathat.train import TrainResult, is_trained, load_metadata, train

from .conftest import N_TEST, N_TRAIN


def test_held_out_accuracy_reaches_95_percent(trained: TrainResult) -> None:
    assert trained.accuracy >= 0.95
    assert (trained.n_train, trained.n_test) == (N_TRAIN, N_TEST)


def test_model_dir_layout_and_metadata(trained: TrainResult) -> None:
    root = trained.model_dir
    names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert names == ["code/features.py", "code/inference.py", "metadata.json", "model.joblib"]
    meta = json.loads((root / "metadata.json").read_text())
    assert meta["accuracy"] == pytest.approx(trained.accuracy, abs=1e-4)
    assert meta["classes"] == ["no_hat", "hat"]
    assert meta["image_size"] == 64
    assert meta["seed"] == 0 and meta["variant"] == 0
    assert meta["feature_version"] == features.FEATURE_VERSION
    assert (root / "model.joblib").stat().st_size < 200_000  # 20+ variants must stay small
    assert is_trained(root, variant=0, seed=0)
    assert not is_trained(root, variant=1, seed=0)
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_variants_are_different_deterministic_models(trained: TrainResult, tmp_path: Path) -> None:
    one = train(tmp_path / "v1", n_train=N_TRAIN, n_test=N_TEST, variant=1)
    again = train(tmp_path / "v1-again", n_train=N_TRAIN, n_test=N_TEST, variant=1)
    assert one.accuracy >= 0.95
    assert one.accuracy == again.accuracy
    meta = load_metadata(one.model_dir)
    assert meta is not None and meta["variant"] == 1 and meta["C"] != trained.C
    assert (one.model_dir / "model.joblib").read_bytes() != (trained.model_dir / "model.joblib").read_bytes()


def test_retraining_replaces_the_model_dir_atomically(tmp_path: Path) -> None:
    out = tmp_path / "m"
    train(out, n_train=200, n_test=50)
    (out / "stale.txt").write_text("left over")
    train(out, n_train=200, n_test=50)
    assert not (out / "stale.txt").exists()
    assert (out / "model.joblib").is_file()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="n_train"):
        train("/nonexistent/never-written", n_train=5)
    with pytest.raises(ValueError, match="variant"):
        train("/nonexistent/never-written", variant=-1)
