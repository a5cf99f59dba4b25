"""Acceptance (issue 5): a multi-model endpoint with 21 cat-hat variants; then the same endpoint
after a backend restart.

The first call to a model is cold and the second warm (ModelCacheHit, ModelDownloadingTime,
ModelLoadingTime in CloudWatch), and the least recently used models are evicted once the
instance's budget is exceeded. The budget that binds here is the volume (1 MiB; a cat-hat archive
unpacks to ~90 KB, so 11 fit): the measured memory of real scikit-learn models is dominated by
the first load's imports, which would make a memory budget test depend on the machine - the memory
LRU is tested with fixed-size models in test_mme_e2e.py.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
from mme_helpers import Mme, mid

pytestmark = pytest.mark.slow

EP = "mme-cathat-real"
VARIANTS = 21


@pytest.fixture(scope="module")
def cathat_archives(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from catkit.build import pack_model
    from catkit.examples.cathat.package import REQUIREMENTS, archive_name
    from catkit.examples.cathat.train import train

    out = tmp_path_factory.mktemp("cathat")
    archives = []
    for v in range(VARIANTS):  # small training sets: the test is about serving, not accuracy
        train(out / f"cathat-v{v}", n_train=60, variant=v, n_test=10, n_jobs=1)
        archives.append(pack_model(out / f"cathat-v{v}", out / archive_name(v), requirements=list(REQUIREMENTS)))
    return archives


@pytest.fixture(scope="module")
def cathat_mme(module_backend_factory) -> Mme:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CATKIT_MME_DISK_BUDGET_MB", "1")
        mp.delenv("CATKIT_MME_MEMORY_BUDGET_MB", raising=False)
        backend = module_backend_factory(time_scale=600)
    return Mme(backend)


def _png(hat: bool) -> bytes:
    from catkit.examples.cathat.data import make_image

    buf = io.BytesIO()
    make_image(seed=3, hat=hat).save(buf, format="PNG")
    return buf.getvalue()


def test_21_cathat_variants_cold_warm_and_lru_eviction(cathat_mme: Mme, cathat_archives: list[Path]) -> None:
    mme = cathat_mme
    mme.deploy(EP)
    names = [p.name for p in cathat_archives]
    for path in cathat_archives:
        mme.put(EP, path.name, path.read_bytes())
    image = _png(hat=True)

    def classify(target: str) -> dict:
        resp = mme.rt.invoke_endpoint(EndpointName=EP, TargetModel=target, ContentType="image/png", Body=image)
        return json.loads(resp["Body"].read())

    first = classify(names[0])
    assert first["label"] in ("hat", "no_hat") and 0 <= first["confidence"] <= 1
    assert (mme.stats(EP, "ModelCacheHit")["SampleCount"], mme.stats(EP, "ModelCacheHit")["Sum"]) == (1, 0)
    assert classify(names[0]) == first
    hits = mme.stats(EP, "ModelCacheHit")
    assert (hits["SampleCount"], hits["Sum"]) == (2, 1)  # cold, then warm
    assert mme.stats(EP, "ModelDownloadingTime")["SampleCount"] == 1
    assert mme.stats(EP, "ModelLoadingTime")["SampleCount"] == 1

    for name in names[1:11]:  # 11 models on the 1 MiB volume: no eviction yet
        classify(name)
    assert mme.loaded(EP) == [{mid(n) for n in names[:11]}]
    assert mme.stats(EP, "ModelUnloadingTime")["SampleCount"] == 0
    classify(names[0])  # v0 becomes the most recently used; v1 is now the least
    for name in names[11:]:
        classify(name)
    # Each new model pushed out the least recently used one: v1..v10, never v0.
    assert mme.loaded(EP) == [{mid(names[0]), *(mid(n) for n in names[11:])}]
    assert mme.stats(EP, "ModelUnloadingTime")["SampleCount"] == 10
    models_dir = next(mme.backend.home.glob(f"instances/{EP}/i-*/models"))
    assert {p.name for p in models_dir.iterdir() if not p.name.startswith(".")} == {
        mid(names[0]), *(mid(n) for n in names[11:])
    }
    hits = mme.stats(EP, "ModelCacheHit")
    assert (hits["SampleCount"], hits["Sum"]) == (2 + 10 + 1 + 10, 2)
    assert classify(names[1]) == classify(names[1])  # evicted earlier: cold again, then warm
    assert mme.stats(EP, "ModelDownloadingTime")["SampleCount"] == VARIANTS + 1


def test_mme_serves_after_backend_restart(cathat_mme: Mme, cathat_archives: list[Path]) -> None:
    """After ``catkit local stop``/``start`` the endpoint is InService again with fresh (empty)
    instances that load models on demand from the persisted S3 prefix."""
    backend = cathat_mme.backend
    backend.restart()  # (the restarted process no longer has the 1 MiB disk budget: default volume)
    mme = Mme(backend)
    deadline = time.monotonic() + 60
    while mme.sm.describe_endpoint(EndpointName=EP)["EndpointStatus"] != "InService":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    target = cathat_archives[5].name
    resp = mme.rt.invoke_endpoint(EndpointName=EP, TargetModel=target, ContentType="image/png", Body=_png(False))
    assert json.loads(resp["Body"].read())["label"] in ("hat", "no_hat")
    assert mme.loaded(EP) == [{mid(target)}]
    model = mme.sm.describe_model(ModelName=EP)["PrimaryContainer"]
    assert model["Mode"] == "MultiModel" and model["ModelDataUrl"].endswith(f"/{EP}/")
