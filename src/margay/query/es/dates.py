"""Elasticsearch date handling for the ES-compatible API: formats, date math (`now-1d/d`, `2023-11-14||+1h`),
rounding as range bounds round, and rendering keys the way a field's format prints them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ...errors import QueryError

_MATH = re.compile(r"([+-])(\d+)([yMwdhHms])|/([yMwdhHms])")
_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")
_JAVA = re.compile(r"yyyy|uuuu|MM|dd|HH|mm|ss|SSS|XXX|Z|'[^']*'|[^A-Za-z']+")

NAMED_FORMATS = {"strict_date_optional_time", "date_optional_time", "strict_date_time", "date_time",
                 "strict_date_optional_time_nanos", "epoch_millis", "epoch_second", "strict_date", "date",
                 "yyyy-MM-dd", "basic_date"}


def zone(name: str | None) -> tzinfo:
    """An ES `time_zone`: `UTC`, `+01:00`, `-0530` or an IANA name."""
    if name is None or name in ("UTC", "Z", "utc", "Etc/UTC", "GMT"):
        return UTC
    m = _OFFSET.match(name)
    if m:
        delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
        return timezone(-delta if m.group(1) == "-" else delta)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise QueryError(f"time_zone: unknown time zone {name!r}") from None


def zone_name(tz: tzinfo) -> str:
    """The name DuckDB's timezone() understands for a zone."""
    if tz is UTC:
        return "UTC"
    if isinstance(tz, ZoneInfo):
        return tz.key
    off = tz.utcoffset(None)
    assert off is not None
    minutes = int(off.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _parse_one(text: str, fmt: str, tz: tzinfo) -> tuple[datetime, str] | None:
    """(instant, precision unit) for one format, or None when the text does not fit it."""
    if fmt == "epoch_millis":
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return datetime.fromtimestamp(float(text) / 1000, UTC), "ms"
        return None
    if fmt == "epoch_second":
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return datetime.fromtimestamp(float(text), UTC), "s" if "." not in text else "ms"
        return None
    if fmt in NAMED_FORMATS or fmt.startswith("strict_") or fmt.startswith("yyyy"):
        m = re.fullmatch(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
                         r"(Z|[+-]\d{2}:?\d{2})?)?)?)?", text)
        if not m:
            return None
        y, mo, d, h, mi, s, frac, off = m.groups()
        unit = "y" if mo is None else "M" if d is None else "d" if h is None else "h" if mi is None else \
            "m" if s is None else "s" if frac is None else "ms"
        micro = int((frac or "0")[:6].ljust(6, "0"))
        micro -= micro % 1000  # ES dates keep milliseconds
        where = tz
        if off is not None:
            where = zone("+00:00" if off == "Z" else off)
        try:
            at = datetime(int(y), int(mo or 1), int(d or 1), int(h or 0), int(mi or 0), int(s or 0), micro,
                          tzinfo=where)
        except ValueError:
            return None
        return at, unit
    raise QueryError(f"date format {fmt!r} is not supported; use strict_date_optional_time, epoch_millis, "
                     "epoch_second or yyyy-MM-dd")


def parse_date(text: str, formats: str, tz: tzinfo) -> tuple[datetime, str]:
    for fmt in formats.split("||"):
        got = _parse_one(text.strip(), fmt.strip(), tz)
        if got is not None:
            return got
    raise QueryError(f"failed to parse date field [{text}] with format [{formats}]")


def _add(at: datetime, n: int, unit: str) -> datetime:
    if unit in ("y", "M"):
        months = at.month - 1 + n * (12 if unit == "y" else 1)
        year = at.year + months // 12
        month = months % 12 + 1
        day = min(at.day, [31, 29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28, 31, 30, 31, 30,
                           31, 31, 30, 31, 30, 31][month - 1])
        return at.replace(year=year, month=month, day=day)
    seconds = {"w": 604800, "d": 86400, "h": 3600, "H": 3600, "m": 60, "s": 1}[unit]
    return at + timedelta(seconds=n * seconds)


def floor_unit(at: datetime, unit: str) -> datetime:
    if unit == "y":
        return at.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "M":
        return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "w":
        start = at.replace(hour=0, minute=0, second=0, microsecond=0)
        return start - timedelta(days=start.weekday())
    if unit == "d":
        return at.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit in ("h", "H"):
        return at.replace(minute=0, second=0, microsecond=0)
    if unit == "m":
        return at.replace(second=0, microsecond=0)
    if unit == "s":
        return at.replace(microsecond=0)
    return at


def _ceil_unit(at: datetime, unit: str) -> datetime:
    """The last millisecond of the unit that holds `at` (ES rounds gt/lte bounds up)."""
    if unit == "ms":
        return at
    return _add(floor_unit(at, unit), 1, unit) - timedelta(milliseconds=1)


def to_ms(at: datetime) -> int:
    return int(at.timestamp() * 1000) if at.microsecond % 1000 == 0 else int(at.timestamp() * 1000 // 1)


def date_math(value: object, formats: str, now: datetime, *, round_up: bool = False, tz: str | None = None) -> int:
    """An ES date value (text with date math, or a number in the field's format) as epoch milliseconds."""
    where = zone(tz)
    if isinstance(value, bool) or value is None:
        raise QueryError(f"expected a date, got {value!r}")
    if isinstance(value, int | float):
        value = repr(value) if isinstance(value, float) else str(value)
    if not isinstance(value, str):
        raise QueryError(f"expected a date, got {value!r}")
    text = value.strip()
    if text.startswith("now"):
        anchor, unit, rest = now.astimezone(where), "ms", text[3:]
    elif "||" in text:
        base, _, rest = text.partition("||")
        anchor, unit = parse_date(base, formats, where)
        anchor = anchor.astimezone(where)
    else:
        anchor, unit = parse_date(text, formats, where)
        return to_ms(_ceil_unit(anchor.astimezone(where), unit) if round_up else anchor)
    pos = 0
    rounded = False
    while pos < len(rest):
        m = _MATH.match(rest, pos)
        if not m:
            raise QueryError(f"cannot read date math {value!r} at {rest[pos:]!r}")
        if m.group(4):
            r = m.group(4)
            anchor = _ceil_unit(anchor, r) if round_up else floor_unit(anchor, r)
            rounded = True
        else:
            n = int(m.group(2)) * (-1 if m.group(1) == "-" else 1)
            anchor = _add(anchor, n, m.group(3))
        pos = m.end()
    del rounded, unit
    return to_ms(anchor)


def _java(fmt: str, at: datetime) -> str:
    out = []
    for tok in _JAVA.findall(fmt):
        if tok in ("yyyy", "uuuu"):
            out.append(f"{at.year:04d}")
        elif tok == "MM":
            out.append(f"{at.month:02d}")
        elif tok == "dd":
            out.append(f"{at.day:02d}")
        elif tok == "HH":
            out.append(f"{at.hour:02d}")
        elif tok == "mm":
            out.append(f"{at.minute:02d}")
        elif tok == "ss":
            out.append(f"{at.second:02d}")
        elif tok == "SSS":
            out.append(f"{at.microsecond // 1000:03d}")
        elif tok in ("XXX", "Z"):
            out.append(_offset(at))
        elif tok.startswith("'"):
            out.append(tok[1:-1])
        else:
            out.append(tok)
    return "".join(out)


def _offset(at: datetime) -> str:
    off = at.utcoffset() or timedelta(0)
    if not off:
        return "Z"
    minutes = int(off.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def format_ms(ms: float, formats: str, tz: str | None = None) -> str:
    """Epoch milliseconds printed in the first of `formats` (as ES prints key_as_string)."""
    fmt = formats.split("||")[0].strip()
    if fmt == "epoch_millis":
        return str(int(ms)) if float(ms).is_integer() else str(ms)
    if fmt == "epoch_second":
        secs = ms / 1000
        return str(int(secs)) if float(secs).is_integer() else f"{secs:.3f}".rstrip("0")
    at = datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone(tz))
    if fmt in ("strict_date_optional_time", "date_optional_time", "strict_date_time", "date_time",
               "strict_date_optional_time_nanos"):
        return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}" + _offset(at)
    if fmt in ("strict_date", "date"):
        return at.strftime("%Y-%m-%d")
    if fmt == "basic_date":
        return at.strftime("%Y%m%d")
    if re.fullmatch(r"[A-Za-z'\-:. T/]+", fmt):
        return _java(fmt, at)
    raise QueryError(f"format {fmt!r} is not supported")
