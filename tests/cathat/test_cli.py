"""``catkit cathat train|sample|package|predict`` through the real dispatcher."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from catkit.cli import main
from catkit.examples.cathat.data import make_image
from catkit.examples.cathat.train import TrainResult

from .conftest import N_TRAIN


def test_sample_writes_the_generated_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "imgs" / "cat.png"
    assert main(["cathat", "sample", "--hat", "--seed", "5", "--out", str(out)]) == 0
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(make_image(5, True)))
    assert "hat seed=5" in capsys.readouterr().out
    assert main(["cathat", "sample", "--no-hat", "--seed", "5", "--out", str(tmp_path / "c.jpg")]) == 0
    assert Image.open(tmp_path / "c.jpg").format == "JPEG"
    assert main(["cathat", "sample", "--no-hat", "--out", str(tmp_path / "c.weird")]) == 2
    with pytest.raises(SystemExit):
        main(["cathat", "sample", "--hat", "--no-hat", "--out", str(out)])


def test_train_prints_accuracy_and_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model"
    assert main(["cathat", "train", "--out", str(out), "--variant", "2", "--n-train", "200"]) == 0
    captured = capsys.readouterr()
    assert "cathat variant 2: held-out accuracy" in captured.out and " s -> " in captured.out
    assert (out / "model.joblib").is_file() and (out / "code" / "inference.py").is_file()


def test_train_defaults_to_catkit_home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cathat", "train", "--n-train", "100"]) == 0
    assert (tmp_path / "catkit-home" / "models" / "cathat-v0" / "model.joblib").is_file()


def test_package_and_predict(
    trained: TrainResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(trained.model_dir, tmp_path / "cathat-v0")
    assert main(["cathat", "package", "--out", str(tmp_path), "--n-train", str(N_TRAIN)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "cathat-v0.tar.gz")
    make_image(8, True).save(tmp_path / "hat.png")
    (tmp_path / "broken.png").write_bytes(b"nope")
    code = main(
        [
            "cathat",
            "predict",
            str(tmp_path / "hat.png"),
            str(tmp_path / "broken.png"),
            "--model",
            str(tmp_path / "cathat-v0"),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 1
    assert "hat.png: {'label': " in out and "broken.png: error:" in err
    assert main(["cathat", "predict", str(tmp_path / "hat.png"), "--model", str(tmp_path / "none")]) == 2
