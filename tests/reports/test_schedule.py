"""GlobalReport schedules: cron fire times bound consecutive reports, jobs start 30 min after, 168 h cut-off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from margay.errors import ParseError
from margay.reports.schedule import Schedule, due


def t(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


def test_daily_intervals_wait_for_the_job_delay() -> None:
    daily = Schedule.parse("0 0 * * *")
    assert due(daily, t(1), t(3, 0, 29)) == [(t(1), t(2))]
    assert due(daily, t(1), t(3, 0, 30)) == [(t(1), t(2)), (t(2), t(3))]
    assert due(daily, t(1), t(1, 23)) == []


def test_twice_an_hour_and_weekdays() -> None:
    s = Schedule.parse("0,30 9-10 * * 1-5")  # 2026-12-05 is a Saturday
    assert list(s.fires(t(4, 8), t(7, 9, 30))) == [t(4, 9), t(4, 9, 30), t(4, 10), t(4, 10, 30), t(7, 9),
                                                    t(7, 9, 30)]
    weekly = Schedule.parse("0 0 * * 0")
    assert list(weekly.fires(t(1), t(31))) == [t(6), t(13), t(20), t(27)]
    both = Schedule.parse("0 0 1 * 3")  # day-of-month OR day-of-week when both are restricted
    assert list(both.fires(datetime(2026, 11, 30, tzinfo=UTC), t(10))) == [t(1), t(2), t(9)]


def test_intervals_older_than_a_week_are_skipped() -> None:
    got = due(Schedule.parse("0 0 * * *"), t(1), t(20, 1))
    # (12th, 13th) ended 7 d 1 h before now: skipped
    assert got[0] == (t(13), t(14)) and got[-1] == (t(19), t(20)) and len(got) == 7


@pytest.mark.parametrize(("text", "message"), [
    ("0 0 * *", "expected five cron fields"),
    ("*/10 * * * *", "at most two minute values"),
    ("61 * * * *", "minute '61' is outside 0-59"),
    ("0 0 * * mon", "day of week 'mon' is not a number"),
    ("0 0/0 * * *", "hour step '0' is not a positive number"),
    (None, "expected five cron fields"),
])
def test_bad_schedules_name_the_field(text: object, message: str) -> None:
    with pytest.raises(ParseError, match=r"^spec\.schedule: " + message):
        Schedule.parse(text)


def test_due_is_quick_over_a_week_of_minutes() -> None:
    got = due(Schedule.parse("0,30 * * * *"), t(1), t(8))
    assert len(got) == 7 * 48 - 1 and all(b - a == timedelta(minutes=30) for a, b in got)
