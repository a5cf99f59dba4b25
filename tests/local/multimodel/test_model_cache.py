"""The per-instance model table (pure): LRU unload and delete choices, busy models kept, ids, and
the TargetModel / prefix checks and budgets of catkit.local.fleet.multimodel."""

from __future__ import annotations

from pathlib import Path

import pytest

from catkit.local.errors import AwsError
from catkit.local.fleet.model_cache import InstanceModels, ModelState, opaque_model_id
from catkit.local.fleet.multimodel import (
    check_target_model,
    disk_budget_bytes,
    memory_budget_bytes,
    server_arguments,
    split_prefix,
)

MB = 2**20


def _table(memory_mb: int = 30, disk_mb: int = 100) -> InstanceModels:
    return InstanceModels(Path("/nonexistent/models"), memory_mb * MB, disk_mb * MB)


def _add(t: InstanceModels, name: str, *, mem_mb: int = 8, disk_mb: int = 1,
         state: ModelState = ModelState.LOADED) -> None:
    e = t.entry(name)
    e.state, e.memory_bytes, e.disk_bytes = state, mem_mb * MB, disk_mb * MB
    e.touch()


def test_unload_victims_are_least_recently_used_first() -> None:
    t = _table()
    for n in ("a", "b", "c"):
        _add(t, n)
    t.get("a").touch()  # order now b, c, a
    assert [e.target for e in t.unload_victims(8 * MB)] == ["b"]
    assert [e.target for e in t.unload_victims(20 * MB)] == ["b", "c"]
    assert t.unload_victims(6 * MB) == []  # 24 + 6 fits in 30


def test_busy_and_excluded_models_are_never_victims() -> None:
    t = _table()
    for n in ("a", "b", "c"):
        _add(t, n)
    t.get("a").inflight = 1
    t.get("b").state = ModelState.LOADING
    assert [e.target for e in t.unload_victims(30 * MB, exclude=t.get("c"))] == []
    assert t.lru_unused_loaded(exclude=t.get("c")) is None
    assert t.lru_unused_loaded().target == "c"


def test_disk_victims_prefer_models_only_on_disk_then_lru() -> None:
    t = _table(disk_mb=3)
    _add(t, "loaded-old", disk_mb=1)
    _add(t, "disk-old", disk_mb=1, state=ModelState.ON_DISK)
    _add(t, "disk-new", disk_mb=1, state=ModelState.ON_DISK)
    _add(t, "new", disk_mb=1, state=ModelState.ON_DISK)
    assert t.disk_used == 4 * MB
    assert [e.target for e in t.disk_victims(0, exclude=t.get("new"))] == ["disk-old"]
    assert [e.target for e in t.disk_victims(2 * MB, exclude=t.get("new"))] == ["disk-old", "disk-new", "loaded-old"]


def test_counts_and_usage() -> None:
    t = _table()
    _add(t, "a")
    _add(t, "b", state=ModelState.ON_DISK)
    _add(t, "c", state=ModelState.DOWNLOADING, disk_mb=0)
    assert (t.loaded_count, t.memory_used, t.disk_used) == (1, 8 * MB, 2 * MB)
    t.forget("a")
    assert t.get("a") is None and t.loaded_count == 0


def test_opaque_ids_are_stable_path_safe_and_distinct() -> None:
    a, b = opaque_model_id("x/../y.tar.gz"), opaque_model_id("x/y.tar.gz")
    assert a == opaque_model_id("x/../y.tar.gz") and a != b
    assert a.startswith("m-") and a[2:].isalnum()
    assert _table().entry("x/y.tar.gz").path == Path("/nonexistent/models") / b / "model"


@pytest.mark.parametrize("good", ["m.tar.gz", "cats/v1/model.tar.gz", "a..b.tar.gz", "with space.tar.gz"])
def test_relative_target_models_pass(good: str) -> None:
    assert check_target_model(good) == good


@pytest.mark.parametrize(
    ("bad", "why"),
    [("/abs.tar.gz", "absolute"), ("../up.tar.gz", "'..'"), ("a/../../b.tar.gz", "'..'"), ("./m.tar.gz", "'.'"),
     ("a\\b.tar.gz", "backslash"), ("a\x01.tar.gz", "control")],
)
def test_unsafe_target_models_are_validation_errors(bad: str, why: str) -> None:
    with pytest.raises(AwsError) as info:
        check_target_model(bad)
    assert info.value.code == "ValidationError" and why in str(info.value)


def test_split_prefix() -> None:
    assert split_prefix("s3://b/models/") == ("b", "models/")
    assert split_prefix("s3://b/models") == ("b", "models/")
    assert split_prefix("s3://b") == ("b", "")
    with pytest.raises(ValueError, match="S3 prefix"):
        split_prefix("https://b/models/")


def test_budgets_default_to_the_instance_type_and_env_shrinks_them(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("CATKIT_MME_MEMORY_BUDGET_MB", raising=False)
    monkeypatch.delenv("CATKIT_MME_DISK_BUDGET_MB", raising=False)
    monkeypatch.delenv("CATKIT_INSTANCE_MEMORY_MB", raising=False)
    assert memory_budget_bytes("ml.m5.large") == int(0.9 * 8 * 1024**3)  # headroom for the server
    monkeypatch.setenv("CATKIT_INSTANCE_MEMORY_MB", "1000")
    assert memory_budget_bytes("ml.m5.large") == int(0.9 * 1000 * MB)
    assert disk_budget_bytes("ml.m5.large") == 30 * 1024**3
    monkeypatch.setenv("CATKIT_MME_MEMORY_BUDGET_MB", "12.5")
    monkeypatch.setenv("CATKIT_MME_DISK_BUDGET_MB", "3")
    assert memory_budget_bytes("ml.m5.large") == int(12.5 * MB)
    assert disk_budget_bytes("ml.m5.large") == 3 * MB
    args = server_arguments("ml.m5.large", tmp_path)
    assert args[:2] == ["--models-root", str(tmp_path / "models")] and (tmp_path / "models").is_dir()
    assert float(args[args.index("--memory-budget-mb") + 1]) == 12.5
    monkeypatch.setenv("CATKIT_MME_MEMORY_BUDGET_MB", "lots")
    with pytest.raises(ValueError, match="CATKIT_MME_MEMORY_BUDGET_MB"):
        memory_budget_bytes("ml.m5.large")


def test_the_models_container_environment_overrides_the_budgets(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CATKIT_MME_MEMORY_BUDGET_MB", "12.5")
    monkeypatch.setenv("CATKIT_MME_DISK_BUDGET_MB", "3")
    env = {"CATKIT_MME_MEMORY_BUDGET_MB": "64", "CATKIT_MME_DISK_BUDGET_MB": "2"}
    assert memory_budget_bytes("ml.m5.large", env) == 64 * MB
    assert disk_budget_bytes("ml.m5.large", env) == 2 * MB
    args = server_arguments("ml.m5.large", tmp_path, env)
    assert float(args[args.index("--memory-budget-mb") + 1]) == 64
    assert disk_budget_bytes("ml.m5.large", {"OTHER": "1"}) == 3 * MB  # unrelated variables: backend's value


# ------------------------------------------------------------------------------ placement
class _Inst:
    """Just what MultiModelManager.place reads from an Instance."""

    def __init__(self, name: str, outstanding: int = 0) -> None:
        from types import SimpleNamespace

        from catkit.local.fleet.instances import InstanceState

        self.id = name
        self.state = InstanceState.IN_SERVICE
        self.outstanding = outstanding
        self.spec = SimpleNamespace(instance_type="ml.m5.large", endpoint="ep", variant="AllTraffic", environment={})
        self.dir = Path("/nonexistent") / name


def _manager(spread_at: int = 4):
    from types import SimpleNamespace

    from catkit.local.clock import FakeClock
    from catkit.local.fleet.multimodel import MultiModelManager

    endpoints = SimpleNamespace(backend=SimpleNamespace(metrics=None), clock=FakeClock())
    return MultiModelManager(endpoints, spread_at=spread_at)  # type: ignore[arg-type]


def _hold(manager, inst: _Inst, target: str, state: ModelState = ModelState.LOADED, mem_mb: int = 8) -> None:
    e = manager.table(inst).entry(target)
    e.state, e.memory_bytes = state, mem_mb * MB


def test_place_prefers_the_instance_holding_the_model() -> None:
    m = _manager()
    a, b = _Inst("a", outstanding=2), _Inst("b", outstanding=0)
    _hold(m, a, "x.tar.gz")
    variant = type("V", (), {"instances": [a, b]})()
    assert m.place(variant, "x.tar.gz") is a  # busier, but it has the model
    assert m.place(variant, "y.tar.gz") is b  # a new model goes to the least busy instance


def test_place_spreads_a_hot_model_when_its_holders_are_busy() -> None:
    m = _manager(spread_at=4)
    a, b, c = _Inst("a", outstanding=4), _Inst("b", outstanding=1), _Inst("c", outstanding=3)
    _hold(m, a, "hot.tar.gz")
    variant = type("V", (), {"instances": [a, b, c]})()
    assert m.place(variant, "hot.tar.gz") is b
    a.outstanding = 3
    assert m.place(variant, "hot.tar.gz") is a  # below the spread threshold: stay on the holder
    _hold(m, b, "hot.tar.gz", ModelState.LOADING)
    a.outstanding, b.outstanding = 6, 5
    assert m.place(variant, "hot.tar.gz") is c  # both holders busy, c is less busy


def test_place_prefers_a_copy_on_disk_then_the_emptier_instance() -> None:
    m = _manager()
    a, b, c = _Inst("a"), _Inst("b"), _Inst("c")
    _hold(m, a, "other.tar.gz", mem_mb=20)
    _hold(m, c, "x.tar.gz", ModelState.ON_DISK)
    variant = type("V", (), {"instances": [a, b, c]})()
    assert m.place(variant, "x.tar.gz") is c  # reload without a download
    assert m.place(variant, "y.tar.gz") is b  # same load, less memory used than a
    for i in (a, b, c):
        i.state = "Draining"
    assert m.place(variant, "x.tar.gz") is None
