"""Archive and disk limits of instances (issue 14 findings 4, 5, 7): an unpacked-size cap per
archive checked while streaming (gzip bombs), sparse members refused, what a killed run left swept
at start-up, instance logs rotated and deleted with the endpoint."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile

import pytest

from catkit.local.fleet.housekeeping import state_usage, sweep_orphans
from catkit.local.fleet.launch_plan import unpacked_cap_bytes
from catkit.testing import echo_archive


def gzip_bomb(mib: int) -> bytes:
    """The echo model plus ``mib`` MiB of zeros: a few tens of KiB of gzip."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(echo_archive()), mode="r:gz") as src, \
            tarfile.open(fileobj=buf, mode="w:gz") as out:
        for m in src.getmembers():
            out.addfile(m, src.extractfile(m) if m.isfile() else None)
        info = tarfile.TarInfo("zeros.bin")
        info.size = mib * 2**20
        out.addfile(info, io.BytesIO(bytes(info.size)))
    return buf.getvalue()


def gnu_sparse_tar(real_size: int = 2**30) -> bytes:
    """A GNU sparse member (type 'S') storing 512 bytes that claims ``real_size`` bytes."""
    info = tarfile.TarInfo("weights.bin")
    info.size = 512
    header = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    header[156:157] = b"S"  # typeflag GNUTYPE_SPARSE
    header[386:398] = b"%011o\0" % 0  # sparse map entry 0: offset
    header[398:410] = b"%011o\0" % 512  # ... and bytes stored
    header[482:483] = b"\0"  # no extended sparse headers
    header[483:495] = b"%011o\0" % real_size  # realsize
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header[:512])
    raw = bytes(header[:512]) + b"w" * 512 + bytes(1024)
    with tarfile.open(fileobj=io.BytesIO(raw)) as check:  # tarfile reads it as a sparse member
        (member,) = check.getmembers()
        assert member.issparse() and member.size == real_size
    return gzip.compress(raw)


def test_default_cap_is_an_eighth_of_the_storage_volume():
    assert unpacked_cap_bytes("ml.m5.large") == 30 * 2**30 // 8
    assert unpacked_cap_bytes("ml.m5.large", 8) == 8 * 2**20


def test_gzip_bomb_fails_the_endpoint_with_the_cap_in_its_reason(h, fake_backend):
    fake_backend.instance_options["max_unpacked_mb"] = 8
    bomb = gzip_bomb(64)
    assert len(bomb) < 256 * 1024
    url = fake_backend.s3.put("models", "bomb/model.tar.gz", bomb)

    async def body(h):
        d = await h.deploy("bomb", url=url)
        assert d["EndpointStatus"] == "Failed", d
        reason = d["FailureReason"]
        assert "zeros.bin" in reason and "8 MiB per archive" in reason and "CATKIT_MAX_UNPACKED_MB" in reason
        assert not list((fake_backend.home / "instances").glob("bomb/*/model*"))  # nothing left behind

    h.run(body)


def test_sparse_member_is_refused(h, fake_backend):
    url = fake_backend.s3.put("models", "sparse/model.tar.gz", gnu_sparse_tar())

    async def body(h):
        d = await h.deploy("sparse", url=url)
        assert d["EndpointStatus"] == "Failed", d
        assert "weights.bin" in d["FailureReason"] and "sparse" in d["FailureReason"]

    h.run(body)


def test_startup_sweeps_what_a_killed_run_left(tmp_path):
    home = tmp_path / "home"
    orphan = home / "instances" / "gone" / "i-0123"
    (orphan / "model").mkdir(parents=True)
    (orphan / "model" / "weights.bin").write_bytes(os.urandom(4096))
    # A model server of the killed run that is still alive (no PDEATHSIG): started from that dir.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", str(orphan)])
    try:
        (orphan / "ready.json").write_text(json.dumps({"port": 1, "pid": sleeper.pid}))
        (home / "instances" / "live" / "i-4567").mkdir(parents=True)
        for ep in ("gone", "live"):
            (home / "logs" / "instances" / ep).mkdir(parents=True)
            (home / "logs" / "instances" / ep / "i-1.log").write_text("x")
        assert state_usage(home)["instances"] >= 4096
        removed = sweep_orphans(home, ["live"])
        assert sleeper.wait(10) is not None  # killed by the sweep
    finally:
        sleeper.kill()
        sleeper.wait()
    assert removed["instance_dirs"] == 2 and removed["log_dirs"] == 1
    assert list((home / "instances").iterdir()) == []
    assert [p.name for p in (home / "logs" / "instances").iterdir()] == ["live"]
    assert state_usage(home)["instances"] == 0


def test_instance_logs_rotate_at_their_cap_and_go_with_the_endpoint(h, fake_backend):
    fake_backend.instance_options["log_cap_mb"] = 64 / 1024  # 64 KiB

    async def body(h):
        assert (await h.deploy("logs"))["EndpointStatus"] == "InService"
        log_dir = fake_backend.home / "logs" / "instances" / "logs"
        (path,) = log_dir.glob("i-*.log")
        with path.open("ab") as f:  # a chatty model: 200 KiB of output
            f.write(b"chatter\n" * 25_600)
        await h.manager.check_health()  # the health round caps the log
        assert path.stat().st_size < 64 * 1024 and (log_dir / (path.name + ".1")).stat().st_size > 200 * 1024
        assert (await h.invoke("logs", b"after"))["Body"] == b"after"  # the instance keeps working
        await h.sm("DeleteEndpoint", EndpointName="logs")
        await h.wait_gone("logs")
        assert not log_dir.exists()

    h.run(body)


@pytest.mark.parametrize("env", [{"CATKIT_MAX_UNPACKED_MB": "x"}, {"CATKIT_INSTANCE_LOG_MB": "big"}])
def test_settings_must_be_numbers(env):
    from catkit.local.fleet.instances import InstanceSettings

    with pytest.raises(ValueError, match=next(iter(env))):
        InstanceSettings.from_env(env)
