"""``catkit load``: shape specs, durations and the sub-commands end to end (offline)."""

from __future__ import annotations

import argparse
import json

import pytest
from botocore.credentials import Credentials

from catkit import cli
from catkit.whatif import cli as load_cli
from catkit.whatif import load
from catkit.whatif.calibrate import ServiceModel


@pytest.mark.parametrize(
    "spec,t,expected",
    [
        ("constant:rps=5", 0, 5),
        ("step:before_rps=1,after_rps=10,at_s=60", 61, 10),
        ("diurnal:low_rps=2,high_rps=20,peak_hour=14", 14 * 3600, 20),
        ("constant:rps=2+spike:at_s=10,duration_s=5,extra_rps=3", 12, 5),
        ("ramp:start_rps=0,end_rps=10,ramp_s=10", 5, 5),
    ],
)
def test_parse_shape(spec, t, expected):
    assert load_cli.parse_shape(spec).rate(t) == pytest.approx(expected)


def test_parse_shape_csv_and_errors(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("rate\n3\n4\n")
    assert load_cli.parse_shape(f"csv:path={p}").rate(1.5) == 4
    for bad, word in (("wave:x=1", "unknown shape"), ("constant:rps", "key=value"), ("constant:speed=1", "bad arg"),
                      ("csv:", "path=FILE")):
        with pytest.raises(ValueError, match=word):
            load_cli.parse_shape(bad)


@pytest.mark.parametrize("text,seconds", [("90", 90), ("15m", 900), ("2h", 7200), ("7d", 604800), ("1.5h", 5400)])
def test_parse_duration(text, seconds):
    assert load_cli.parse_duration(text) == seconds


def test_parse_duration_rejects_nonsense():
    with pytest.raises(argparse.ArgumentTypeError):
        load_cli.parse_duration("soon")
    with pytest.raises(argparse.ArgumentTypeError):
        load_cli.parse_duration("-5m")


def test_simulate_command_prints_summary_and_writes_frame(tmp_path, capsys):
    svc = tmp_path / "svc.json"
    ServiceModel(max_rps=30, workers=3).save(svc)
    out = tmp_path / "frame.csv"
    rc = cli.main(["load", "simulate", "--shape", "step:before_rps=5,after_rps=60,at_s=600", "--duration", "1h",
                   "--service", str(svc), "--slo-ms", "300", "--out", str(out)])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["instances_max"] > 2 and summary["slo_p99_ms"] == 300
    assert len(out.read_text().splitlines()) == 61


def test_recommend_command(capsys):
    rc = cli.main(["load", "recommend", "--shape", "diurnal:low_rps=2,high_rps=60", "--duration", "6h",
                   "--slo-ms", "400", "--quiet", "--endpoint", "ep"])
    out = capsys.readouterr().out
    assert rc == 0 and "put_scaling_policy arguments" in out and '"ResourceId": "endpoint/ep/variant/AllTraffic"' in out


def test_run_command_against_a_fake_endpoint(fake_endpoint, monkeypatch, tmp_path, capsys):
    ep = fake_endpoint()

    class Meta:
        endpoint_url = ep.url
        region_name = "us-east-1"

    class Boto:
        def get_credentials(self):
            return Credentials("AK", "SK")

    class FakeSession:
        runtime = type("R", (), {"meta": Meta()})()
        boto_session = Boto()

    monkeypatch.setattr(load_cli, "_session", lambda args: FakeSession())
    out = tmp_path / "requests.csv"
    rc = cli.main(["load", "run", "ep", "--shape", "constant:rps=20", "--duration", "1", "--time-scale", "1",
                   "--quiet", "--out", str(out), "--payload-text", "hi"])
    assert rc == 0 and len(ep.requests) == 20 and ep.requests[0]["body"] == b"hi"
    assert json.loads(capsys.readouterr().out)["ok"] == 20
    assert len(out.read_text().splitlines()) == 21
    assert isinstance(load.SHAPES["constant"](rps=1), load.Shape)
