"""Multi-model endpoints end to end: real boto3 against a backend process, real model servers.

The issue's acceptance test is the first one: 21 cat-hat variants behind one endpoint, the first
call to a model cold and the second warm in the metrics, LRU eviction once the memory budget
(30 MiB, models of 8 MiB) is exceeded.
"""

from __future__ import annotations

import concurrent.futures

import pytest
from botocore.exceptions import ClientError
from mme_helpers import Mme, mid

from catkit.testing import multi_model_archive, wait_until

pytestmark = pytest.mark.slow


def test_cold_then_warm_and_lru_eviction_over_21_variants(mme: Mme) -> None:
    ep = "mme-cathat"
    names = [f"cathat-v{k:02d}.tar.gz" for k in range(21)]
    mme.deploy(ep)
    for k, name in enumerate(names):
        mme.put(ep, name, multi_model_archive(f"cathat-{k}"))

    assert mme.invoke(ep, names[0]) == {"model": "cathat-0", "version": 1}
    cold = mme.stats(ep, "ModelCacheHit")
    assert (cold["SampleCount"], cold["Sum"]) == (1, 0)  # first call: a miss
    assert mme.invoke(ep, names[0]) == {"model": "cathat-0", "version": 1}
    warm = mme.stats(ep, "ModelCacheHit")
    assert (warm["SampleCount"], warm["Sum"]) == (2, 1)  # second call: a hit
    for metric in ("ModelDownloadingTime", "ModelLoadingTime", "ModelLoadingWaitTime"):
        s = mme.stats(ep, metric)
        assert s["SampleCount"] == 1 and s["Sum"] > 0, (metric, s)

    # Three 8 MiB models fit in 30 MiB; touching v00 makes v01 the least recently used.
    mme.invoke(ep, names[1])
    mme.invoke(ep, names[2])
    assert mme.loaded(ep) == [{mid(names[0]), mid(names[1]), mid(names[2])}]
    mme.invoke(ep, names[0])
    mme.invoke(ep, names[3])
    assert mme.loaded(ep) == [{mid(names[0]), mid(names[2]), mid(names[3])}]
    assert mme.stats(ep, "ModelUnloadingTime")["SampleCount"] == 1

    # v01 stayed on the volume: loading it again is a miss without a download.
    assert mme.invoke(ep, names[1])["model"] == "cathat-1"
    assert mme.stats(ep, "ModelDownloadingTime")["SampleCount"] == 4
    assert mme.stats(ep, "ModelLoadingTime")["SampleCount"] == 5
    assert mme.loaded(ep) == [{mid(names[0]), mid(names[3]), mid(names[1])}]  # v02 was the LRU

    # Every variant answers; never more than three are loaded at once. LRU order is now v00, v03,
    # v01: v00 and v01 hit, then each further model evicts the oldest (v03, v00, v01, ...).
    for k, name in enumerate(names):
        assert mme.invoke(ep, name)["model"] == f"cathat-{k}"
    assert mme.loaded(ep) == [{mid(n) for n in names[-3:]}]
    hits = mme.stats(ep, "ModelCacheHit")
    assert (hits["SampleCount"], hits["Sum"]) == (2 + 4 + 1 + 21, 1 + 1 + 2)
    # LoadedModelCount is sampled once per emulated minute (0.1 s real at time scale 600).
    count = wait_until(lambda: (c := mme.stats(ep, "LoadedModelCount", "/aws/sagemaker/Endpoints"))["SampleCount"]
                       and c, 30, what="a LoadedModelCount sample")
    assert count["SampleCount"] >= 1 and 1 <= count["Maximum"] <= 3


def test_concurrent_first_requests_load_once(mme: Mme) -> None:
    ep = "mme-single-flight"
    mme.deploy(ep)
    mme.put(ep, "slow.tar.gz", multi_model_archive("slow", mb=1, load_sleep=1.0))
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: mme.invoke(ep, "slow.tar.gz"), range(8)))
    assert results == [{"model": "slow", "version": 1}] * 8
    assert mme.stats(ep, "ModelDownloadingTime")["SampleCount"] == 1
    assert mme.stats(ep, "ModelLoadingTime")["SampleCount"] == 1
    hits = mme.stats(ep, "ModelCacheHit")
    assert hits["SampleCount"] == 8 and hits["Sum"] == 0  # all eight waited for the one load
    assert mme.stats(ep, "ModelLoadingWaitTime")["SampleCount"] == 8


def test_model_added_later_and_overwritten_archive(mme: Mme) -> None:
    ep = "mme-updates"
    mme.deploy(ep)
    mme.put(ep, "late/added.tar.gz", multi_model_archive("added", mb=1))
    assert mme.invoke(ep, "late/added.tar.gz") == {"model": "added", "version": 1}
    # Overwriting in S3 does not reach an instance that holds the model (AWS: "the old version of
    # the model might still be loaded"); a fresh name does.
    mme.put(ep, "late/added.tar.gz", multi_model_archive("added", mb=1, version=2))
    assert mme.invoke(ep, "late/added.tar.gz") == {"model": "added", "version": 1}
    mme.put(ep, "late/added-v2.tar.gz", multi_model_archive("added", mb=1, version=2))
    assert mme.invoke(ep, "late/added-v2.tar.gz") == {"model": "added", "version": 2}
    # Warm requests never go to S3: a model deleted from the prefix keeps serving where it is
    # loaded (as on AWS, until evicted); a new load of it would fail.
    mme.s3.delete_object(Bucket="mme-tests", Key=f"{ep}/late/added-v2.tar.gz")
    assert mme.invoke(ep, "late/added-v2.tar.gz") == {"model": "added", "version": 2}


def _error(call) -> ClientError:
    with pytest.raises(ClientError) as info:
        call()
    return info.value


def test_errors_like_aws_and_the_endpoint_keeps_serving(mme: Mme) -> None:
    ep = "mme-errors"
    mme.deploy(ep)
    mme.put(ep, "good.tar.gz", multi_model_archive("good", mb=1))
    mme.put(ep, "broken.tar.gz", multi_model_archive("broken", mb=1, fail=True))
    mme.put(ep, "garbage.tar.gz", b"this is not a tar archive")
    assert mme.invoke(ep, "good.tar.gz")["model"] == "good"

    e = _error(lambda: mme.invoke(ep, "absent.tar.gz"))
    assert e.response["Error"]["Code"] == "ValidationError"
    assert f"key: {ep}/absent.tar.gz" in e.response["Error"]["Message"]
    for bad in ("../escape.tar.gz", "a/../../b.tar.gz", "/etc/passwd"):
        e = _error(lambda bad=bad: mme.invoke(ep, bad))
        assert e.response["Error"]["Code"] == "ValidationError" and "relative" in e.response["Error"]["Message"]
    e = _error(lambda: mme.invoke(ep, None))
    assert e.response["Error"]["Code"] == "ValidationError"
    assert "is missing a target model header" in e.response["Error"]["Message"]

    e = _error(lambda: mme.invoke(ep, "broken.tar.gz"))
    assert e.response["Error"]["Code"] == "ModelError"
    assert e.response["OriginalStatusCode"] == 500 and "broken model broken" in e.response["Error"]["Message"]
    e = _error(lambda: mme.invoke(ep, "garbage.tar.gz"))
    assert e.response["Error"]["Code"] == "ModelError" and "garbage.tar.gz" in e.response["Error"]["Message"]
    assert mme.stats(ep, "Invocation5XXErrors")["Sum"] == 2  # the two models that failed to load
    assert mme.stats(ep, "Invocation4XXErrors")["Sum"] == 0

    # A fixed archive under the same name is picked up: failed models are not kept.
    mme.put(ep, "broken.tar.gz", multi_model_archive("broken", mb=1))
    assert mme.invoke(ep, "broken.tar.gz")["model"] == "broken"
    assert mme.invoke(ep, "good.tar.gz")["model"] == "good"
    assert mme.stats(ep, "ModelCacheHit")["Sum"] >= 1


def test_unsafe_archive_is_refused_naming_the_member(mme: Mme) -> None:
    ep = "mme-unsafe"
    mme.deploy(ep)
    evil = multi_model_archive("evil", mb=1, extra={"../../outside.txt": b"pwned"})
    mme.put(ep, "evil.tar.gz", evil)
    e = _error(lambda: mme.invoke(ep, "evil.tar.gz"))
    assert e.response["Error"]["Code"] == "ModelError"
    assert "../../outside.txt" in e.response["Error"]["Message"]
    assert not list(mme.backend.home.glob("instances/**/outside.txt"))
    # A gzip bomb (16 MiB of zeros in ~16 KiB) stops at the per-archive cap while streaming, and the
    # ModelError says what the cap is and how to change it (issue 14 finding 5).
    bomb = multi_model_archive("bomb", mb=1, extra={"zeros.bin": bytes(16 * 2**20)})
    assert len(bomb) < 64 * 1024
    mme.put(ep, "bomb.tar.gz", bomb)
    e = _error(lambda: mme.invoke(ep, "bomb.tar.gz"))
    message = e.response["Error"]["Message"]
    assert e.response["Error"]["Code"] == "ModelError" and "zeros.bin" in message, message
    assert "MiB per archive" in message and "CATKIT_MAX_UNPACKED_MB" in message, message
    assert not list(mme.backend.home.glob("instances/**/zeros.bin"))


def test_target_model_on_a_single_model_endpoint(mme: Mme) -> None:
    ep = "mme-single"
    mme.s3.put_object(Bucket="mme-tests", Key="single/model.tar.gz", Body=multi_model_archive("one", mb=1))
    mme.deploy(ep, multi_model=False, model_data="s3://mme-tests/single/model.tar.gz")
    assert mme.invoke(ep, None)["model"] == "one"
    e = _error(lambda: mme.invoke(ep, "model.tar.gz"))
    assert e.response["Error"]["Code"] == "ValidationError"
    assert e.response["Error"]["Message"] == (
        f"Endpoint {ep} is not a multi-model endpoint and does not support target model header."
    )


def test_slow_load_answers_model_not_ready_then_serves(mme: Mme) -> None:
    ep = "mme-not-ready"
    mme.deploy(ep)
    mme.put(ep, "huge.tar.gz", multi_model_archive("huge", mb=1, load_sleep=4.5))
    e = _error(lambda: mme.invoke(ep, "huge.tar.gz"))  # waits CATKIT_MME_LOAD_WAIT_SECONDS=3
    assert e.response["Error"]["Code"] == "ModelNotReadyException"
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 429

    def served() -> bool:  # the load went on; a retry is served
        try:
            return mme.invoke(ep, "huge.tar.gz")["model"] == "huge"
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "ModelNotReadyException"
            return False

    wait_until(served, 20, what="the slow model to be served")
    assert mme.stats(ep, "ModelLoadingTime")["SampleCount"] == 1


def test_disk_budget_deletes_least_recently_used_models(mme: Mme) -> None:
    ep = "mme-disk"
    mme.deploy(ep)
    for k in range(3):  # 700 KiB each on disk, 2 MiB volume budget
        mme.put(ep, f"d{k}.tar.gz", multi_model_archive(f"d{k}", mb=0, blob_kb=700))
    for k in range(3):
        assert mme.invoke(ep, f"d{k}.tar.gz")["model"] == f"d{k}"
    models_dir = next(mme.backend.home.glob(f"instances/{ep}/i-*/models"))
    on_disk = {p.name for p in models_dir.iterdir() if (p / "model").is_dir()}
    assert on_disk == {mid("d1.tar.gz"), mid("d2.tar.gz")}  # d0 (LRU) deleted to make room
    assert mme.loaded(ep) == [{mid("d1.tar.gz"), mid("d2.tar.gz")}]
    assert mme.invoke(ep, "d0.tar.gz")["model"] == "d0"  # downloaded again
    assert mme.stats(ep, "ModelDownloadingTime")["SampleCount"] == 4
    # DiskUtilization is sampled once per emulated minute: the first sample taken with two models
    # on the volume is at least half full; the maximum never goes past 100 %.
    disk = wait_until(lambda: (d := mme.stats(ep, "DiskUtilization", "/aws/sagemaker/Endpoints"))["Maximum"] >= 50
                      and d, 30, what="a DiskUtilization sample of the filled volume")
    assert 50 <= disk["Maximum"] <= 100


def test_cache_disabled_unloads_after_each_invocation(mme: Mme) -> None:
    ep = "mme-nocache"
    mme.deploy(ep, cache="Disabled")
    mme.put(ep, "once.tar.gz", multi_model_archive("once", mb=1))
    assert mme.invoke(ep, "once.tar.gz")["model"] == "once"
    wait_until(lambda: mme.loaded(ep) == [set()], 10, what="the model to be unloaded")
    assert mme.invoke(ep, "once.tar.gz")["model"] == "once"
    assert mme.stats(ep, "ModelCacheHit")["Sum"] == 0
    assert mme.stats(ep, "ModelDownloadingTime")["SampleCount"] == 2


def test_hot_model_spreads_to_a_second_instance(mme: Mme) -> None:
    ep = "mme-spread"
    mme.deploy(ep, instances=2)
    mme.put(ep, "hot.tar.gz", multi_model_archive("hot", mb=1))
    mme.invoke(ep, "hot.tar.gz")
    assert sorted(len(s) for s in mme.loaded(ep)) == [0, 1]  # one holder while traffic is light
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        results = list(pool.map(lambda _: mme.invoke(ep, "hot.tar.gz", {"sleep": 0.3}), range(24)))
    assert all(r["model"] == "hot" for r in results)
    assert mme.loaded(ep) == [{mid("hot.tar.gz")}, {mid("hot.tar.gz")}]


def test_catkit_helpers_workflow(mme: Mme, tmp_path) -> None:
    """catkit.mme's deploy_multi_model / add_model / invoke_model - the notebooks' path."""
    from catkit import mme as helpers
    from catkit.session import Session

    session = Session(backend="local", home=str(mme.backend.home))
    ep = helpers.deploy_multi_model(session, name="mme-helpers", image_uri="local/mme:1", poll=0.1, progress=False)
    assert ep.status == "InService"
    (tmp_path / "cat-a.tar.gz").write_bytes(multi_model_archive("cat-a", mb=1))
    assert helpers.add_model(session, "mme-helpers", str(tmp_path / "cat-a.tar.gz")) == "cat-a.tar.gz"
    assert helpers.add_model(session, "mme-helpers", f"{ep.model_data}cat-a.tar.gz", name="v2/cat-b.tar.gz")
    assert helpers.list_models(session, "mme-helpers") == ["cat-a.tar.gz", "v2/cat-b.tar.gz"]
    for target in ("cat-a.tar.gz", "v2/cat-b.tar.gz"):
        prediction = helpers.invoke_model(session, "mme-helpers", target, {"x": 1})
        assert prediction.value == {"model": "cat-a", "version": 1}


def test_multi_model_container_without_prefix_is_a_clear_error(mme: Mme) -> None:
    ep = "mme-noprefix"
    mme.sm.create_model(ModelName=ep, PrimaryContainer={"Image": "local/mme:1", "Mode": "MultiModel"},
                        ExecutionRoleArn="arn:aws:iam::123456789012:role/SageMakerExecutionRole")
    mme.sm.create_endpoint_config(EndpointConfigName=ep, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": ep, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    mme.sm.create_endpoint(EndpointName=ep, EndpointConfigName=ep)
    mme.sm.get_waiter("endpoint_in_service").wait(EndpointName=ep, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300})
    e = _error(lambda: mme.invoke(ep, "a.tar.gz"))
    assert e.response["Error"]["Code"] == "ValidationError" and "ModelDataUrl" in e.response["Error"]["Message"]
