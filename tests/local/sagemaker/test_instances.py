"""Instance-level rules: settings from the environment, S3 URLs, what a container may set."""

from __future__ import annotations

import os

import pytest

from catkit.local.errors import AwsError
from catkit.local.fleet.container_env import allowed_environment, refusal
from catkit.local.fleet.instances import InstanceSettings, tail_lines
from catkit.local.services import sagemaker as sagemaker_service
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


@pytest.mark.parametrize("name", ["PYTHONPATH", "LD_PRELOAD", "OPENSSL_CONF", "OPENSSL_MODULES", "GCONV_PATH",
                                  "NODE_OPTIONS", "MALLOC_CONF", "PYTHONSTARTUP", "PYTHONHOME", "ld_preload",
                                  "PATH", "BAD-NAME"])
def test_loader_and_runtime_hooks_are_refused_at_create_model(h, name):
    async def body(h):
        with pytest.raises(AwsError) as err:
            await h.model("hooked", env={"GREETING": "meow", name: "/tmp/evil"})
        assert err.value.code == "ValidationException" and repr(name) in err.value.message
        with pytest.raises(AwsError):  # not stored
            await h.sm("DescribeModel", ModelName="hooked")

    h.run(body)


def test_documented_and_own_variables_are_allowed():
    for name in ("SAGEMAKER_PROGRAM", "SAGEMAKER_MODEL_SERVER_WORKERS", "HF_TASK", "SM_NUM_GPUS", "TS_DEFAULT_WORKERS_PER_MODEL",
                 "MMS_DEFAULT_RESPONSE_TIMEOUT", "OMP_NUM_THREADS", "PYTHONUNBUFFERED", "GREETING", "ENV", "_x1"):
        assert refusal(name) is None, name
    assert allowed_environment({"GREETING": "meow", "OPENSSL_CONF": "/x", "LD_PRELOAD": "/y"}) == {"GREETING": "meow"}


def test_container_environment_cannot_inject_interpreter_settings(h, monkeypatch):
    """A model stored before CreateModel refused hooks still cannot set them: the launcher drops them."""
    host_path = os.environ.get("PYTHONPATH", "").encode()  # the backend's own, inherited
    monkeypatch.setattr(sagemaker_service, "check_environment", lambda containers: None)

    async def body(h):
        await h.model("m", env={"PYTHONPATH": "/tmp/evil", "LD_PRELOAD": "/tmp/evil.so", "OPENSSL_CONF": "/tmp/x",
                                "GREETING": "meow"})
        await h.config("c", [("AllTraffic", "m", 1)])
        await h.sm("CreateEndpoint", EndpointName="env", EndpointConfigName="c")
        assert (await h.wait("env", ("InService", "Failed")))["EndpointStatus"] == "InService"
        got = {k: (await h.invoke("env", k.encode(), ContentType="application/x-env"))["Body"]
               for k in ("PYTHONPATH", "LD_PRELOAD", "OPENSSL_CONF", "GREETING", "SAGEMAKER_VARIANT_NAME")}
        assert got == {"PYTHONPATH": host_path, "LD_PRELOAD": b"", "OPENSSL_CONF": b"", "GREETING": b"meow",
                       "SAGEMAKER_VARIANT_NAME": b"AllTraffic"}

    h.run(body)
