"""Durations as admins write them: "30s", "2h", "1h30m", "5d", "1w"."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_UNITS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")


def parse_duration(text: str) -> timedelta:
    """Parse a duration; refuse anything ambiguous rather than guess (e.g. a bare number)."""
    compact = text.replace(" ", "")
    if not compact or _PART.sub("", compact):
        raise ValueError(f"{text!r} is not a duration: write e.g. 30s, 15m, 2h, 1h30m, 5d, 1w")
    seconds = sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(compact))
    if seconds <= 0:
        raise ValueError(f"{text!r}: a duration must be longer than zero")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    remaining = int(value.total_seconds())
    parts = []
    for unit, size in _UNITS.items():
        if remaining >= size:
            parts.append(f"{remaining // size}{unit}")
            remaining %= size
    return "".join(parts) or "0s"


def _coerce(value: object) -> object:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError(f"{value!r} has no unit: write e.g. {value}h or {value}s")
    return value


Duration = Annotated[timedelta, BeforeValidator(_coerce), PlainSerializer(format_duration)]


def parse_offset(text: str) -> timedelta:
    """A signed duration: "-30m" is before a deadline (a warning), "0s" at it, "2h" after it."""
    compact = text.replace(" ", "")
    if compact in ("0", "0s"):
        return timedelta(0)
    if compact.startswith("-"):
        return -parse_duration(compact[1:])
    return parse_duration(compact.removeprefix("+"))


def _coerce_offset(value: object) -> object:
    if isinstance(value, str):
        return parse_offset(value)
    if value == 0 and not isinstance(value, bool):
        return timedelta(0)
    return _coerce(value)


Offset = Annotated[timedelta, BeforeValidator(_coerce_offset), PlainSerializer(format_duration)]
