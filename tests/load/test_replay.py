"""Replay from a CSV of request timestamps or of per-second rates."""

from __future__ import annotations

import pytest

from catkit.whatif import shapes


def test_timestamps_csv_is_binned_per_second(tmp_path):
    p = tmp_path / "requests.csv"
    p.write_text("timestamp\n1700000000.1\n1700000000.5\n1700000002.2\n1700000002.3\n1700000002.9\n")
    shape = shapes.Replay.from_csv(p)
    assert shape.per_second(3).tolist() == [2.0, 0.0, 3.0]
    assert shape.rate(10) == 0  # after the recording
    assert shape.expected_requests(3) == 5


def test_iso_timestamps_and_first_column_default(tmp_path):
    p = tmp_path / "requests.csv"
    p.write_text("when,path\n2024-01-01T00:00:00Z,/a\n2024-01-01T00:00:00.5Z,/a\n2024-01-01T00:00:01Z,/b\n")
    shape = shapes.Replay.from_csv(p)
    assert shape.per_second(2).tolist() == [2.0, 1.0]


def test_rates_csv_holds_each_row_until_the_next(tmp_path):
    p = tmp_path / "rates.csv"
    p.write_text("time,rps\n0,5\n10,20\n30,1\n")
    shape = shapes.Replay.from_csv(p)
    assert shape.rate([0, 9.9, 10, 29, 30, 49.9]).tolist() == [5, 5, 20, 20, 1, 1]
    assert shape.rate(50) == 0  # the last row lasts as long as the step before it


def test_rates_without_time_column_and_loop(tmp_path):
    p = tmp_path / "rates.csv"
    p.write_text("rate\n1\n2\n3\n")
    shape = shapes.Replay.from_csv(p, bin_s=60, loop=True)
    assert shape.rate([0, 60, 120, 180, 240]).tolist() == [1, 2, 3, 1, 2]


@pytest.mark.parametrize(
    "text,kwargs,word",
    [
        ("", {}, "no data rows"),
        ("a,b\n", {}, "no data rows"),
        ("rate\nfast\n", {}, "fast"),
        ("t\nyesterday\n", {}, "yesterday"),
        ("time,rate\n0,1\n", {"rate_column": "rps"}, "no column 'rps'"),
    ],
)
def test_bad_csv_errors_name_the_problem(tmp_path, text, kwargs, word):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(ValueError, match=word):
        shapes.Replay.from_csv(p, **kwargs)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="does not exist"):
        shapes.Replay.from_csv("/nonexistent/traffic.csv")


def test_replay_composes_with_other_shapes():
    shape = shapes.Replay.from_rates([1, 2]) + shapes.Constant(10)
    assert shape.rate([0.5, 1.5, 2.5]).tolist() == [11, 12, 10]
