"""One trained cat-hat model per test session (small but sufficient training set)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from catkit.examples.cathat.train import TrainResult, train

N_TRAIN = 3000
N_TEST = 1000


@pytest.fixture(autouse=True)
def _catkit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATKIT_HOME", str(tmp_path / "catkit-home"))


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    return train(tmp_path_factory.mktemp("cathat") / "cathat-v0", n_train=N_TRAIN, n_test=N_TEST, seed=0)


def load_handler(model_dir: Path, name: str = "cathat_handler_under_test") -> ModuleType:
    """Import code/inference.py by file path, the way a model server does."""
    spec = importlib.util.spec_from_file_location(name, model_dir / "code" / "inference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def handler(trained: TrainResult) -> ModuleType:
    return load_handler(trained.model_dir)


@pytest.fixture(scope="session")
def model(handler: ModuleType, trained: TrainResult) -> object:
    return handler.model_fn(str(trained.model_dir))
