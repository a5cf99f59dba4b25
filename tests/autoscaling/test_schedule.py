"""Schedule expressions (at, rate, cron incl. ?, L, W, #, ranges, lists, steps, year, time zones)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from catkit.autoscaling.errors import ScalingError
from catkit.autoscaling.schedule import Schedule


def ts(*a) -> float:
    return datetime(*a, tzinfo=UTC).timestamp()


def runs(expr: str, start: float, n: int = 3, tz: str = "UTC", **kw) -> list[str]:
    s = Schedule(expr, tz, **kw)
    out, t = [], start
    for _ in range(n):
        t = s.next_after(t)
        if t is None:
            break
        out.append(datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %a %H:%M"))
    return out


FRI = ts(2024, 3, 1, 12, 0)  # Friday 1 March 2024, 12:00 UTC

CASES = [
    ("cron(0 9 * * ? *)", ["2024-03-02 Sat 09:00", "2024-03-03 Sun 09:00", "2024-03-04 Mon 09:00"]),
    ("cron(0/15 * * * ? *)", ["2024-03-01 Fri 12:15", "2024-03-01 Fri 12:30", "2024-03-01 Fri 12:45"]),
    ("cron(0 22 ? * MON-FRI *)", ["2024-03-01 Fri 22:00", "2024-03-04 Mon 22:00", "2024-03-05 Tue 22:00"]),
    ("cron(30 6 ? * 2,4 *)", ["2024-03-04 Mon 06:30", "2024-03-06 Wed 06:30", "2024-03-11 Mon 06:30"]),
    ("cron(0 0 L * ? *)", ["2024-03-31 Sun 00:00", "2024-04-30 Tue 00:00", "2024-05-31 Fri 00:00"]),
    ("cron(0 0 LW * ? *)", ["2024-03-29 Fri 00:00", "2024-04-30 Tue 00:00", "2024-05-31 Fri 00:00"]),
    ("cron(0 0 15W * ? *)", ["2024-03-15 Fri 00:00", "2024-04-15 Mon 00:00", "2024-05-15 Wed 00:00"]),
    ("cron(0 0 16W * ? *)", ["2024-03-15 Fri 00:00", "2024-04-16 Tue 00:00", "2024-05-16 Thu 00:00"]),
    ("cron(0 10 ? * 3#2 *)", ["2024-03-12 Tue 10:00", "2024-04-09 Tue 10:00", "2024-05-14 Tue 10:00"]),
    ("cron(0 10 ? * 6L *)", ["2024-03-29 Fri 10:00", "2024-04-26 Fri 10:00", "2024-05-31 Fri 10:00"]),
    (
        "cron(0 8 1 JAN,JUL ? 2025-2026)",
        ["2025-01-01 Wed 08:00", "2025-07-01 Tue 08:00", "2026-01-01 Thu 08:00"],
    ),
    ("cron(0 12-14/2 1 * ? *)", ["2024-03-01 Fri 14:00", "2024-04-01 Mon 12:00", "2024-04-01 Mon 14:00"]),
    ("cron(0 0 0 1 1 ? 2030)", ["2030-01-01 Tue 00:00"]),  # seven fields: leading seconds ignored
    ("cron(0 0 30 2 ? *)", []),  # 30 February never comes
    ("rate(5 minutes)", ["2024-03-01 Fri 12:05", "2024-03-01 Fri 12:10", "2024-03-01 Fri 12:15"]),
    ("rate(1 day)", ["2024-03-02 Sat 12:00", "2024-03-03 Sun 12:00", "2024-03-04 Mon 12:00"]),
    ("at(2024-03-05T07:00:00)", ["2024-03-05 Tue 07:00"]),
]


@pytest.mark.parametrize("expr,expected", CASES)
def test_next_runs(expr, expected):
    kw = {"created": FRI} if expr.startswith("rate") else {}
    assert runs(expr, FRI, **kw) == expected


def test_time_zone_and_daylight_saving():
    # 22:00 in Berlin is 21:00 UTC in winter and 20:00 UTC after the change on 31 March 2024.
    assert runs("cron(0 22 ? * FRI *)", ts(2024, 3, 22), tz="Europe/Berlin") == [
        "2024-03-22 Fri 21:00",
        "2024-03-29 Fri 21:00",
        "2024-04-05 Fri 20:00",
    ]
    assert runs("at(2024-03-05T07:00:00)", FRI, tz="America/New_York") == ["2024-03-05 Tue 12:00"]


def test_start_and_end_time_bound_the_runs():
    assert runs("cron(0 9 * * ? *)", FRI, 5, start_time=ts(2024, 3, 3), end_time=ts(2024, 3, 4, 23)) == [
        "2024-03-03 Sun 09:00",
        "2024-03-04 Mon 09:00",
    ]
    assert runs("rate(1 hour)", FRI, 2, start_time=ts(2024, 3, 2)) == [
        "2024-03-02 Sat 00:00",
        "2024-03-02 Sat 01:00",
    ]


@pytest.mark.parametrize(
    "expr,word",
    [
        ("cron(0 9 * * * *)", "exactly one of Day-of-month and Day-of-week"),
        ("cron(0 9 * *)", "6 fields"),
        ("cron(60 9 * * ? *)", "Minutes value 60"),
        ("cron(0 9 ? * FUNDAY *)", "Day-of-week"),
        ("rate(0 minutes)", "positive integer"),
        ("rate(5 weeks)", "unit"),
        ("rate(1 minutes)", "singular"),
        ("at(2024-13-01T00:00:00)", "not valid"),
        ("every 5 minutes", "not valid"),
    ],
)
def test_invalid_expressions_name_the_problem(expr, word):
    with pytest.raises(ScalingError, match=word) as e:
        Schedule(expr)
    assert e.value.code == "ValidationException"


def test_unknown_time_zone():
    with pytest.raises(ScalingError, match="IANA"):
        Schedule("cron(0 9 * * ? *)", "Mars/Olympus")
