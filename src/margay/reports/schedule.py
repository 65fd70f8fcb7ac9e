"""GlobalReport schedules: five-field cron (minute hour day-of-month month day-of-week, UTC) whose
consecutive fire times bound consecutive reports; a report's job starts a delay after its end (30 min, as
TIGERA_COMPLIANCE_JOB_START_DELAY) and intervals that ended more than 168 h ago are skipped, as Calico does."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..errors import ParseError

JOB_START_DELAY = timedelta(minutes=30)
MAX_JOB_AGE = timedelta(hours=168)
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))


def _field(text: str, name: str, lo: int, hi: int, where: str) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, _, s = part.partition("/")
            if not s.isdigit() or int(s) == 0:
                raise ParseError(f"{where}: {name} step {s!r} is not a positive number")
            step = int(s)
        if part == "*":
            a, b = lo, hi
        elif "-" in part:
            x, _, y = part.partition("-")
            if not (x.isdigit() and y.isdigit()):
                raise ParseError(f"{where}: {name} range {part!r} is not two numbers")
            a, b = int(x), int(y)
        elif part.isdigit():
            a = b = int(part)
            if step != 1:
                b = hi
        else:
            raise ParseError(f"{where}: {name} {part!r} is not a number, range, list or *")
        if not lo <= a <= b <= hi:
            raise ParseError(f"{where}: {name} {part!r} is outside {lo}-{hi}")
        out.update(range(a, b + 1, step))
    return frozenset(out)


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, text: object, where: str = "spec.schedule") -> Schedule:
        if not isinstance(text, str) or len(text.split()) != 5:
            raise ParseError(f"{where}: expected five cron fields (minute hour day-of-month month day-of-week), "
                             f"got {text!r}")
        parts = text.split()
        sets = [_field(p, n, lo, hi, where) for p, (n, lo, hi) in zip(parts, _FIELDS, strict=True)]
        if len(sets[0]) > 2:  # Calico's API: at most two minute values, so at most two reports an hour
            raise ParseError(f"{where}: at most two minute values (two reports an hour), got {parts[0]!r}")
        weekdays = frozenset(d % 7 for d in sets[4])
        return cls(sets[0], sets[1], sets[2], sets[3], weekdays, parts[2] == "*", parts[4] == "*")

    def _day_ok(self, t: datetime) -> bool:
        dom, dow = t.day in self.days, (t.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:  # cron: both restricted means either may match
            return dom and dow
        return dom or dow

    def fires(self, after: datetime, until: datetime) -> Iterator[datetime]:
        """Fire times t with after < t <= until, in order (minute resolution)."""
        t = after.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        while t <= until:
            if t.month not in self.months or not self._day_ok(t):
                t = (t + timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if t.hour not in self.hours:
                t = (t + timedelta(hours=1)).replace(minute=0)
                continue
            if t.minute in self.minutes:
                yield t
            t += timedelta(minutes=1)


def due(schedule: Schedule, last_end: datetime, now: datetime, *, delay: timedelta = JOB_START_DELAY
        ) -> list[tuple[datetime, datetime]]:
    """The intervals (start, end) after `last_end` whose job may start by `now` (end + delay <= now),
    oldest first; intervals older than 168 h are skipped."""
    fires = [last_end, *schedule.fires(last_end, now - delay)]
    pairs = list(zip(fires, fires[1:], strict=False))
    return [(a, b) for a, b in pairs if now - b <= MAX_JOB_AGE]
