"""The synthetic generator is deterministic, varied, balanced, and does not leak the label."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from catkit.examples.cathat.data import CLASSES, make_dataset, make_image


def _px(seed: int, hat: bool, size: int = 64) -> np.ndarray:
    return np.asarray(make_image(seed, hat, size), dtype=np.int16)


def test_same_seed_same_pixels() -> None:
    for seed in (0, 1, 12345):
        for hat in (False, True):
            assert np.array_equal(_px(seed, hat), _px(seed, hat))


def test_different_seeds_differ() -> None:
    images = [_px(seed, True) for seed in range(6)]
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            assert np.abs(images[i] - images[j]).mean() > 5


def test_hat_is_added_to_the_same_cat_and_is_tiny() -> None:
    for seed in range(10):
        plain, hatted = _px(seed, False), _px(seed, True)
        changed = (np.abs(plain - hatted).max(axis=-1) > 40).mean()
        assert 0.003 < changed < 0.08, (seed, changed)
        # the change is confined to the upper part of the cat, not spread over the image
        rows = np.nonzero((np.abs(plain - hatted).max(axis=-1) > 40).any(axis=1))[0]
        assert rows.max() - rows.min() < 32


def test_image_properties() -> None:
    image = make_image(7, True, size=96)
    assert image.mode == "RGB" and image.size == (96, 96)
    with pytest.raises(ValueError, match="size"):
        make_image(0, True, size=8)


def test_dataset_is_balanced_deterministic_and_shuffled() -> None:
    images, labels = make_dataset(40, seed=3)
    assert len(images) == 40 and labels.tolist().count(1) == 20
    assert labels[:20].sum() not in (0, 20)
    again, labels2 = make_dataset(40, seed=3)
    assert np.array_equal(labels, labels2)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(images, again, strict=True))
    other, _ = make_dataset(40, seed=4)
    assert not np.array_equal(np.asarray(images[0]), np.asarray(other[0]))
    assert CLASSES == ("no_hat", "hat")


def test_colour_statistics_do_not_give_the_label_away() -> None:
    """A classifier that sees only colour histograms must stay near chance."""

    def colour_hist(images: list) -> np.ndarray:
        feats = []
        for img in images:
            arr = np.asarray(img).reshape(-1, 3) // 32
            codes = arr[:, 0] * 64 + arr[:, 1] * 8 + arr[:, 2]
            feats.append(np.bincount(codes, minlength=512) / len(codes))
        return np.array(feats)

    x_train, y_train = make_dataset(800, seed=11)
    x_test, y_test = make_dataset(400, seed=12)
    clf = LogisticRegression(C=10.0, max_iter=2000).fit(colour_hist(x_train), y_train)
    assert clf.score(colour_hist(x_test), y_test) < 0.7
