"""Schedule expressions of scheduled actions: ``at()``, ``rate()``, ``cron()`` with IANA time zones.

Syntax (AAS user guide, scheduled scaling; aws-facts §1.8):

* ``at(yyyy-mm-ddThh:mm:ss)`` - once, at that wall time in the action's time zone.
* ``rate(value unit)`` - unit ``minute(s)``, ``hour(s)``, ``day(s)``; value a positive integer.
  ASSUMPTION: the first run is at StartTime when given, otherwise one interval after the action
  was created.
* ``cron(Minutes Hours Day-of-month Month Day-of-week Year)`` - six fields (a seven-field form with
  leading Seconds is accepted; seconds are ignored, the finest resolution is one minute).
  ``*``, ``?``, lists ``a,b``, ranges ``a-b``, steps ``a/n`` ``*/n`` ``a-b/n``; month names
  JAN-DEC; day-of-week 1-7 = SUN-SAT or names; ``L`` (last day of month / Saturday, ``nL`` = last
  weekday n of the month), ``W`` (``nW`` nearest weekday to day n, ``LW`` last weekday of the
  month), ``#`` (``n#k`` = k-th weekday n of the month); year 1970-2199. Exactly one of
  Day-of-month and Day-of-week must be ``?``.

Wall times are interpreted in ``Timezone`` (IANA name, default UTC) with :mod:`zoneinfo`, so
daylight-saving changes move the UTC firing time. StartTime/EndTime (epoch seconds) bound runs.
"""

from __future__ import annotations

import calendar
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from catkit.autoscaling.errors import validation

_MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_RATE_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
HELP = (
    "Use at(yyyy-mm-ddThh:mm:ss), rate(value unit) with unit minute(s)|hour(s)|day(s), or "
    "cron(Minutes Hours Day-of-month Month Day-of-week Year)."
)


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise validation(
            f"Timezone {name!r} is not a valid IANA time zone name (example: Europe/Berlin)."
        ) from None


def _aws_dow(d: date) -> int:
    """1 = Sunday ... 7 = Saturday."""
    return (d.weekday() + 1) % 7 + 1


def _value(token: str, names: dict[str, int] | None, lo: int, hi: int, what: str) -> int:
    t = token.upper()
    if names and t in names:
        v = names[t]
    elif t.isdigit():
        v = int(t)
    else:
        raise ValueError(f"{what} value {token!r} is not valid")
    if not lo <= v <= hi:
        raise ValueError(f"{what} value {v} is outside {lo}-{hi}")
    return v


def _parse_set(text: str, lo: int, hi: int, what: str, names: dict[str, int] | None = None) -> set[int]:
    out: set[int] = set()
    for item in text.split(","):
        if not item:
            raise ValueError(f"empty item in {what} field")
        step = 1
        if "/" in item:
            item, step_s = item.split("/", 1)
            if not step_s.isdigit() or int(step_s) < 1:
                raise ValueError(f"{what} step {step_s!r} must be a positive integer")
            step = int(step_s)
            if item in ("*", ""):
                item = f"{lo}-{hi}"
            elif "-" not in item:
                item = f"{item}-{hi}"
        if item == "*":
            start, end = lo, hi
        elif "-" in item:
            a, b = item.split("-", 1)
            start, end = _value(a, names, lo, hi, what), _value(b, names, lo, hi, what)
            if start > end:
                raise ValueError(f"{what} range {item} runs backwards")
        else:
            start = end = _value(item, names, lo, hi, what)
        out.update(range(start, end + 1, step))
    return out


@dataclass
class _Cron:
    minutes: set[int]
    hours: set[int]
    months: set[int]
    years: set[int]
    dom_any: bool = False
    dom: set[int] = field(default_factory=set)
    dom_last: bool = False
    dom_last_weekday: bool = False
    dom_nearest_weekday: set[int] = field(default_factory=set)
    dow_any: bool = False
    dow: set[int] = field(default_factory=set)
    dow_last: set[int] = field(default_factory=set)
    dow_nth: set[tuple[int, int]] = field(default_factory=set)

    def day_matches(self, d: date) -> bool:
        if d.month not in self.months or d.year not in self.years:
            return False
        ndays = calendar.monthrange(d.year, d.month)[1]
        if not self.dom_any:
            if d.day in self.dom or (self.dom_last and d.day == ndays):
                return True
            if self.dom_last_weekday and d == _nearest_weekday(d.year, d.month, ndays, last=True):
                return True
            return any(d == _nearest_weekday(d.year, d.month, n) for n in self.dom_nearest_weekday)
        dow = _aws_dow(d)
        if dow in self.dow:
            return True
        if dow in self.dow_last and d.day + 7 > ndays:
            return True
        return (dow, (d.day - 1) // 7 + 1) in self.dow_nth


def _nearest_weekday(year: int, month: int, day: int, last: bool = False) -> date | None:
    ndays = calendar.monthrange(year, month)[1]
    if day > ndays:
        return None
    d = date(year, month, day)
    if d.weekday() == 5:  # Saturday -> Friday, unless that leaves the month
        return d - timedelta(days=1) if day > 1 else d + timedelta(days=2)
    if d.weekday() == 6:  # Sunday -> Monday, unless that leaves the month
        return d + timedelta(days=1) if day < ndays and not last else d - timedelta(days=2)
    return d


def _add_day_of_month(c: _Cron, item: str) -> None:
    """One comma-separated Day-of-month item: ``L``, ``LW``, ``<n>W`` or a set (``1-15/2``)."""
    u = item.upper()
    if u == "L":
        c.dom_last = True
    elif u == "LW":
        c.dom_last_weekday = True
    elif u.endswith("W"):
        c.dom_nearest_weekday.add(_value(u[:-1], None, 1, 31, "Day-of-month"))
    else:
        c.dom |= _parse_set(item, 1, 31, "Day-of-month")


def _add_day_of_week(c: _Cron, item: str) -> None:
    """One comma-separated Day-of-week item: ``L``, ``<day>L``, ``<day>#<n>`` or a set (``MON-FRI``)."""
    u = item.upper()
    if u == "L":
        c.dow.add(7)
    elif u.endswith("L"):
        c.dow_last.add(_value(u[:-1], _DAYS, 1, 7, "Day-of-week"))
    elif "#" in u:
        a, b = u.split("#", 1)
        k = _value(b, None, 1, 5, "Day-of-week occurrence")
        c.dow_nth.add((_value(a, _DAYS, 1, 7, "Day-of-week"), k))
    else:
        c.dow |= _parse_set(item, 1, 7, "Day-of-week", _DAYS)


def _parse_cron(body: str) -> _Cron:
    fields = body.split()
    if len(fields) == 7:
        fields = fields[1:]  # leading Seconds: accepted, not honoured (one-minute resolution)
    if len(fields) != 6:
        raise ValueError(
            f"cron needs 6 fields (Minutes Hours Day-of-month Month Day-of-week Year), got {len(fields)}"
        )
    mi, hr, dom, mon, dow, yr = fields
    if (dom == "?") == (dow == "?"):
        raise ValueError("exactly one of Day-of-month and Day-of-week must be '?'")
    c = _Cron(
        minutes=_parse_set(mi, 0, 59, "Minutes"),
        hours=_parse_set(hr, 0, 23, "Hours"),
        months=_parse_set(mon, 1, 12, "Month", _MONTHS),
        years=_parse_set(yr, 1970, 2199, "Year"),
    )
    c.dom_any, c.dow_any = dom == "?", dow == "?"
    for item in [] if c.dom_any else dom.split(","):
        _add_day_of_month(c, item)
    for item in [] if c.dow_any else dow.split(","):
        _add_day_of_week(c, item)
    return c


@dataclass
class Schedule:
    """A parsed schedule expression; :meth:`next_after` gives the next run (epoch seconds)."""

    expression: str
    timezone: str = "UTC"
    start_time: float | None = None
    end_time: float | None = None
    created: float = 0.0
    kind: str = field(init=False)
    _tz: ZoneInfo = field(init=False, repr=False)
    _at: float | None = field(init=False, default=None, repr=False)
    _rate: int | None = field(init=False, default=None, repr=False)
    _cron: _Cron | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self._tz = zone(self.timezone)
        expr = self.expression.strip()
        m = re.fullmatch(r"(at|rate|cron)\((.*)\)", expr)
        if not m:
            raise validation(f"Schedule expression {self.expression!r} is not valid. {HELP}")
        self.kind, body = m.group(1), m.group(2).strip()
        try:
            if self.kind == "at":
                local = datetime.strptime(body, "%Y-%m-%dT%H:%M:%S")
                self._at = local.replace(tzinfo=self._tz).timestamp()
            elif self.kind == "rate":
                parts = body.split()
                if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) < 1:
                    raise ValueError("rate needs a positive integer and a unit")
                unit = parts[1].lower()
                if unit not in _RATE_UNITS:
                    raise ValueError(f"unit {parts[1]!r} is not minute(s), hour(s) or day(s)")
                if (int(parts[0]) == 1) != (unit in ("minute", "hour", "day")):
                    raise ValueError("use the singular unit for 1 and the plural for larger values")
                self._rate = int(parts[0]) * _RATE_UNITS[unit]
            else:
                self._cron = _parse_cron(body)
        except ValueError as e:
            raise validation(f"Schedule expression {self.expression!r} is not valid: {e}. {HELP}") from None
        if self.start_time is not None and self.end_time is not None and self.end_time < self.start_time:
            raise validation("EndTime must be after StartTime.")

    def _in_window(self, t: float) -> bool:
        return (self.start_time is None or t >= self.start_time) and (
            self.end_time is None or t <= self.end_time
        )

    def next_after(self, t: float) -> float | None:
        """The first run strictly after ``t`` inside StartTime/EndTime, or None if there is none."""
        lo = t if self.start_time is None else max(t, self.start_time - 1e-6)
        nxt: float | None
        if self.kind == "at":
            nxt = self._at if self._at is not None and self._at > lo else None
        elif self.kind == "rate":
            assert self._rate is not None
            anchor = self.start_time if self.start_time is not None else self.created + self._rate
            k = max(0, math.floor((lo - anchor) / self._rate) + 1) if lo >= anchor else 0
            nxt = anchor + k * self._rate
        else:
            nxt = self._next_cron(lo)
        if nxt is None or not self._in_window(nxt):
            return None
        return nxt

    def _next_cron(self, t: float) -> float | None:
        c = self._cron
        assert c is not None
        local = datetime.fromtimestamp(t, self._tz)
        day = local.date()
        last_year = max(c.years)
        hours, minutes = sorted(c.hours), sorted(c.minutes)
        if day.year < min(c.years):
            day = date(min(c.years), 1, 1)
        while day.year <= last_year:
            if c.day_matches(day):
                for h in hours:
                    for mi in minutes:
                        ts = datetime(day.year, day.month, day.day, h, mi, tzinfo=self._tz).timestamp()
                        if ts > t:
                            return ts
            day += timedelta(days=1)
        return None
