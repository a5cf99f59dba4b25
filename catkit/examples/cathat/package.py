"""Cat-hat model archives: train a variant if needed and pack it as a SageMaker ``model.tar.gz``.

``build_cathat_archive(out_dir, variant=K)`` leaves ``out_dir/cathat-vK/`` (the servable model
directory) and ``out_dir/cathat-vK.tar.gz`` (model files at the root, ``code/inference.py``,
``code/features.py``, ``code/requirements.txt``). An up-to-date model directory is reused, so
calling it again is cheap and gives the same archive bytes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from catkit.build import pack_model
from catkit.examples.cathat.train import DEFAULT_N_TRAIN, install_code, is_trained, load_metadata, train

__all__ = ["REQUIREMENTS", "archive_name", "build_cathat_archive", "build_cathat_archives"]

# What code/inference.py needs beyond a SageMaker scikit-learn container (which has numpy,
# scikit-learn and joblib). The local model server does not install anything.
REQUIREMENTS = ("pillow>=10.4,<14",)


def archive_name(variant: int) -> str:
    """File name of a variant's archive (also its TargetModel on a multi-model endpoint)."""
    return f"cathat-v{variant}.tar.gz"


def build_cathat_archive(
    out_dir: str | os.PathLike[str],
    variant: int = 0,
    *,
    seed: int = 0,
    n_train: int = DEFAULT_N_TRAIN,
    retrain: bool = False,
    progress: bool = False,
) -> Path:
    """Train variant ``variant`` unless already trained in ``out_dir``, pack it; return the archive.

    ``progress``: a bar while it trains (seconds to a minute on 2 cores), none when cached."""
    from catkit.progress import StatusBar

    out = Path(out_dir)
    model_dir = out / f"cathat-v{variant}"
    meta = load_metadata(model_dir)
    fresh = is_trained(model_dir, variant, seed) and meta is not None and meta.get("n_train") == n_train
    if retrain or not fresh:
        with StatusBar(f"cat-hat v{variant}", enabled=progress) as bar:
            bar.show(f"training on {n_train} generated images")
            train(model_dir, n_train=n_train, seed=seed, variant=variant)
            bar.done("trained")
    else:
        install_code(model_dir)  # ship the current handler code with the existing weights
    return pack_model(model_dir, out / archive_name(variant), requirements=list(REQUIREMENTS))


def build_cathat_archives(
    out_dir: str | os.PathLike[str], variants: Iterable[int], *, seed: int = 0, n_train: int = DEFAULT_N_TRAIN,
    progress: bool = False,
) -> list[Path]:
    """Archives for several variants (for a multi-model endpoint); features are shared in-process.
    ``progress``: a bar over the variants."""
    from catkit.progress import step_bar

    variants = list(variants)
    archives = []
    with step_bar(len(variants), "cat-hat variants", unit="model", enabled=progress) as bar:
        for v in variants:
            bar.set_postfix_str(f"v{v}")
            archives.append(build_cathat_archive(out_dir, v, seed=seed, n_train=n_train))
            bar.update(1)
    return archives
