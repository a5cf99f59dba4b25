"""``catkit local reset`` and ``use_local()`` reusing the backend AWS_ENDPOINT_URL points at."""

from __future__ import annotations

import os

import pytest

from catkit.cli import main as catkit_main
from catkit.local import lifecycle, sdk

ENV_KEYS = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION",
            "CATKIT_HOME")


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for key in ENV_KEYS:
        monkeypatch.setenv(key, "x")  # recorded, so teardown restores what was there
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))  # the default home would be ~/.catkit in here
    yield
    sdk.unpatch_sagemaker_sdk()


def test_cli_reset_of_a_running_and_of_a_stopped_backend(local_backend_factory, capsys):
    b = local_backend_factory(time_scale=1000)
    b.client("s3").create_bucket(Bucket="goes-away")
    assert catkit_main(["local", "reset", "--home", str(b.home)]) == 0
    assert "reset the running catkit local backend" in capsys.readouterr().out
    assert b.client("s3").list_buckets()["Buckets"] == []
    b.client("s3").create_bucket(Bucket="goes-away-too")
    b.stop()
    answer = lifecycle.reset(b.home)
    assert answer["status"] == "ok" and answer["running"] is False and answer["removed"] >= 2  # state, s3/
    assert not (b.home / "state.sqlite").exists() and not (b.home / "s3").exists()
    b.start()
    assert b.client("s3").list_buckets()["Buckets"] == []


def test_use_local_reuses_the_backend_aws_endpoint_url_points_at(local_backend_factory, clean_env, tmp_path, capsys):
    b = local_backend_factory(time_scale=1000)
    os.environ["AWS_ENDPOINT_URL"] = b.url
    assert sdk.use_local() == b.url
    assert not (tmp_path / "user" / ".catkit" / "backend.json").exists()  # no second backend in ~/.catkit
    assert "started the local backend" not in capsys.readouterr().err


def test_use_local_says_where_when_it_must_start_one(clean_env, tmp_path, capsys):
    home = tmp_path / "fresh-home"
    os.environ["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"  # nothing (catkit) listens there
    try:
        url = sdk.use_local(home=str(home))
        err = capsys.readouterr().err
        assert f"catkit: started the local backend at {url} (home {home})" in err
        assert "AWS_ENDPOINT_URL was http://127.0.0.1:9, which is not a running catkit backend" in err
        assert os.environ["AWS_ENDPOINT_URL"] == url
    finally:
        lifecycle.stop(home)
