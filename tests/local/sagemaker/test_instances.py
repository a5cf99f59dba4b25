"""Instance-level rules: settings from the environment, S3 URLs, what a container may set."""

from __future__ import annotations

import pytest

from catkit.local.fleet.instances import InstanceSettings, tail_lines
from catkit.s3_urls import split_s3_url


def test_settings_from_env_and_overrides():
    s = InstanceSettings.from_env({"CATKIT_PROVISIONING_SECONDS": "12", "CATKIT_STARTUP_HEALTH_SECONDS": "30"})
    assert (s.provisioning_seconds, s.startup_health_seconds) == (12.0, 30.0)
    assert s.ping_timeout_real == 2.0 and s.stop_grace_seconds == 30.0  # AWS's numbers
    s = InstanceSettings.from_env({"CATKIT_PROVISIONING_SECONDS": "12"}, provisioning_seconds=1.0)
    assert s.provisioning_seconds == 1.0
    with pytest.raises(ValueError, match="CATKIT_PROVISIONING_SECONDS"):
        InstanceSettings.from_env({"CATKIT_PROVISIONING_SECONDS": "soon"})


@pytest.mark.parametrize("url", ["s3://bucket", "s3:///key", "https://bucket/key", "bucket/key", "s3://b/"])
def test_bad_s3_urls_are_refused(url):
    with pytest.raises(ValueError, match="s3://bucket/key"):
        split_s3_url(url)


def test_split_s3_url():
    assert split_s3_url("s3://b/a/b/model.tar.gz") == ("b", "a/b/model.tar.gz")


def test_tail_lines(tmp_path):
    p = tmp_path / "x.log"
    p.write_text("one\ntwo\nthree\n")
    assert tail_lines(p, 2) == "two | three"
    assert tail_lines(tmp_path / "missing.log", 2) == ""


def test_container_environment_cannot_inject_interpreter_settings(h, monkeypatch):
    monkeypatch.delenv("PYTHONPATH", raising=False)

    async def body(h):
        await h.model("m", env={"PYTHONPATH": "/tmp/evil", "LD_PRELOAD": "/tmp/evil.so", "GREETING": "meow"})
        await h.config("c", [("AllTraffic", "m", 1)])
        await h.sm("CreateEndpoint", EndpointName="env", EndpointConfigName="c")
        assert (await h.wait("env", ("InService", "Failed")))["EndpointStatus"] == "InService"
        got = {k: (await h.invoke("env", k.encode(), ContentType="application/x-env"))["Body"]
               for k in ("PYTHONPATH", "LD_PRELOAD", "GREETING", "SAGEMAKER_VARIANT_NAME")}
        assert got == {"PYTHONPATH": b"", "LD_PRELOAD": b"", "GREETING": b"meow", "SAGEMAKER_VARIANT_NAME": b"AllTraffic"}

    h.run(body)
