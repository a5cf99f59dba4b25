"""Training the cat-hat classifier and writing a servable SageMaker model directory.

``train(out_dir)`` generates synthetic images (:mod:`catkit.examples.cathat.data`), extracts HOG
features (:mod:`catkit.examples.cathat.features`), fits a standardised logistic regression and
writes::

    out_dir/model.joblib          scikit-learn pipeline (StandardScaler + LogisticRegression)
    out_dir/metadata.json         accuracy, classes, image size, seeds, feature version, ...
    out_dir/code/inference.py     SageMaker handler (model_fn/input_fn/predict_fn/output_fn)
    out_dir/code/features.py      the feature code the handler imports

so the directory can be served as is or packed with :func:`catkit.build.pack_model`.
Variants (``variant=K``) train on a different subset of a shared image pool with a slightly
different regularisation, so many variants are cheap to train in one process (the pool's features
are computed once); all variants are scored on the same held-out set.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import joblib
import numpy as np
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from catkit.examples.cathat import features
from catkit.examples.cathat.data import CLASSES, image_seed, make_image

__all__ = [
    "CODE_FILES",
    "DEFAULT_N_TEST",
    "DEFAULT_N_TRAIN",
    "IMAGE_SIZE",
    "TrainResult",
    "install_code",
    "is_trained",
    "load_metadata",
    "train",
]

DEFAULT_N_TRAIN = 6000
DEFAULT_N_TEST = 1000
IMAGE_SIZE = 64
JPEG_FRACTION = 0.5  # of training and held-out images, re-encoded as JPEG
CODE_FILES = ("inference.py", "features.py")  # shipped in code/, from this package
_C_BY_VARIANT = (0.005, 0.003, 0.01, 0.004, 0.007)
_HOG_BATCH = 256
_TEST_STREAM = 1_000_003  # the held-out set's dataset seed offset: never used for training


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` did: where the model is and how well it scored on held-out images."""

    model_dir: Path
    accuracy: float
    n_train: int
    n_test: int
    seconds: float
    variant: int
    seed: int
    C: float


def _dataset_seed(seed: int, variant: int) -> int:
    return int(np.random.SeedSequence([seed, variant, 7]).generate_state(1)[0])


def _as_received(seed: int, hat: bool, size: int) -> np.ndarray:
    """The image as a client might send it: half of them JPEG-compressed (quality 60-95).

    Without this the classifier mistakes JPEG block edges for hat edges.
    """
    image = make_image(seed, hat, size)
    rng = np.random.default_rng([seed, 3])
    if rng.random() < JPEG_FRACTION:
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=int(rng.integers(60, 96)))
        image = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return np.asarray(image)


def _features_chunk(dataset_seed: int, start: int, labels: np.ndarray, size: int) -> np.ndarray:
    parts = []
    for first in range(0, len(labels), _HOG_BATCH):  # bounded memory for the gradient arrays
        batch = labels[first : first + _HOG_BATCH]
        images = np.stack(
            [
                _as_received(image_seed(dataset_seed, start + first + i), bool(label), size)
                for i, label in enumerate(batch)
            ]
        )
        parts.append(features.hog(images))
    return np.concatenate(parts)


def _labels(n: int, dataset_seed: int) -> np.ndarray:
    labels = np.zeros(n, dtype=np.int64)
    labels[: n // 2] = 1
    np.random.default_rng([dataset_seed, n]).shuffle(labels)
    return labels


def _featurize(n: int, dataset_seed: int, size: int, n_jobs: int) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of the ``n`` images :func:`make_dataset(n, dataset_seed)` would draw."""
    labels = _labels(n, dataset_seed)
    if n_jobs <= 1 or n < 400:
        return _features_chunk(dataset_seed, 0, labels, size), labels
    bounds = np.linspace(0, n, n_jobs * 2 + 1).astype(int)
    parts = joblib.Parallel(n_jobs=n_jobs)(
        joblib.delayed(_features_chunk)(dataset_seed, int(a), labels[a:b], size)
        for a, b in itertools.pairwise(bounds)
    )
    return np.concatenate(parts), labels


def _pool_size(n_train: int) -> int:
    """Variants draw ``n_train`` of this many shared images (so they differ but share features)."""
    return n_train + n_train // 4


_FEATURE_CACHE: dict[tuple[int, int, int, int], tuple[np.ndarray, np.ndarray]] = {}


def _cached_features(n: int, dataset_seed: int, n_jobs: int) -> tuple[np.ndarray, np.ndarray]:
    """Features of a dataset, kept for the next variant trained in this process (4 datasets max)."""
    key = (n, dataset_seed, IMAGE_SIZE, features.FEATURE_VERSION)
    if key not in _FEATURE_CACHE:
        while len(_FEATURE_CACHE) >= 4:
            _FEATURE_CACHE.pop(next(iter(_FEATURE_CACHE)))
        _FEATURE_CACHE[key] = _featurize(n, dataset_seed, IMAGE_SIZE, n_jobs)
    return _FEATURE_CACHE[key]


def _default_jobs() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def train(
    out_dir: str | os.PathLike[str],
    n_train: int = DEFAULT_N_TRAIN,
    seed: int = 0,
    *,
    variant: int = 0,
    n_test: int = DEFAULT_N_TEST,
    n_jobs: int | None = None,
) -> TrainResult:
    """Train variant ``variant`` and write a servable model directory to ``out_dir``."""
    if n_train < 20 or n_test < 2:
        raise ValueError(f"need n_train >= 20 and n_test >= 2 (got {n_train}, {n_test})")
    if variant < 0:
        raise ValueError(f"variant must be >= 0, got {variant}")
    started = time.perf_counter()
    jobs = _default_jobs() if n_jobs is None else max(1, n_jobs)
    c_value = _C_BY_VARIANT[variant % len(_C_BY_VARIANT)]
    pool_x, pool_y = _cached_features(_pool_size(n_train), _dataset_seed(seed, 0), jobs)
    pick = np.sort(np.random.default_rng([seed, variant, 11]).permutation(len(pool_y))[:n_train])
    x_train, y_train = pool_x[pick], pool_y[pick]
    x_test, y_test = _cached_features(n_test, _dataset_seed(seed + _TEST_STREAM, 0), jobs)
    model = Pipeline(
        [("scale", StandardScaler()), ("clf", LogisticRegression(C=c_value, max_iter=5000))]
    ).fit(x_train, y_train)
    accuracy = float(model.score(x_test, y_test))
    seconds = time.perf_counter() - started

    result = TrainResult(Path(out_dir), accuracy, n_train, n_test, seconds, variant, seed, c_value)
    metadata = {
        "name": f"cathat-v{variant}",
        "accuracy": round(accuracy, 4),
        "classes": list(CLASSES),
        "image_size": IMAGE_SIZE,
        "seed": seed,
        "variant": variant,
        "n_train": n_train,
        "n_test": n_test,
        "feature_version": features.FEATURE_VERSION,
        "jpeg_fraction": JPEG_FRACTION,
        "model": "StandardScaler+LogisticRegression",
        "C": c_value,
        "train_seconds": round(seconds, 2),
    }
    _write_model_dir(Path(out_dir), model, metadata)
    return result


def _write_model_dir(out: Path, model: Pipeline, metadata: dict) -> None:
    """Write into a temp dir beside ``out`` and swap it in, so a half-written model is never seen."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.train-", dir=out.parent))
    try:
        joblib.dump(model, tmp / "model.joblib", compress=3)
        install_code(tmp)
        (tmp / "metadata.json").write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
        os.chmod(tmp, 0o755)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            old.rmdir()
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def install_code(model_dir: str | os.PathLike[str]) -> Path:
    """Copy the handler (``inference.py``) and ``features.py`` into ``model_dir/code``; return it."""
    code = Path(model_dir) / "code"
    code.mkdir(parents=True, exist_ok=True)
    here = Path(__file__).resolve().parent
    for name in CODE_FILES:
        shutil.copyfile(here / name, code / name)
    return code


def load_metadata(model_dir: str | os.PathLike[str]) -> dict | None:
    """The model directory's ``metadata.json``, or ``None`` if it has none (or it is unreadable)."""
    try:
        return json.loads((Path(model_dir) / "metadata.json").read_text())
    except (OSError, ValueError):
        return None


def is_trained(model_dir: str | os.PathLike[str], variant: int, seed: int = 0) -> bool:
    """True if ``model_dir`` holds a complete model of this variant/seed with current features."""
    meta = load_metadata(model_dir)
    return (
        meta is not None
        and (Path(model_dir) / "model.joblib").is_file()
        and meta.get("variant") == variant
        and meta.get("seed") == seed
        and meta.get("feature_version") == features.FEATURE_VERSION
    )


def result_dict(result: TrainResult) -> dict:
    """JSON-friendly form of a :class:`TrainResult`."""
    out = asdict(result)
    out["model_dir"] = str(result.model_dir)
    return out
