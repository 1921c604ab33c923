"""How the app writes durations, channel counts and learning rates: one formatter each.

Plain Python (no Qt): pages, dialogs and backend messages all use these, so
the same quantity reads the same everywhere.
"""
from __future__ import annotations

import math

MISSING = "\u2013"      # "–": no value (None, NaN, negative, infinite)


def _seconds(value) -> float | None:
    """``value`` as a finite, non-negative number of seconds, or None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def format_clock(seconds) -> str:
    """h:mm:ss (``0:01:05``), whole seconds truncated; "–" for None, NaN or a negative value."""
    value = _seconds(seconds)
    if value is None:
        return MISSING
    hours, rem = divmod(int(value), 3600)
    minutes, secs = divmod(rem, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def format_duration(seconds) -> str:
    """A length of audio or time as a person reads it: ``29.7 s`` under a minute,
    then ``m:ss`` and ``h:mm:ss`` (rounded to the second); "–" when unknown."""
    value = _seconds(seconds)
    if value is None:
        return MISSING
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(int(round(value)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_rough_duration(seconds) -> str:
    """An estimate in words: ``12 minutes``, ``3.5 hours`` (from 2 hours),
    ``2.3 days`` (from 2 days); at least ``1 minute``; "–" when unknown."""
    value = _seconds(seconds)
    if value is None:
        return MISSING
    if value >= 2 * 86_400:
        return f"{value / 86_400:.1f} days"
    if value >= 2 * 3600:
        return f"{value / 3600:.1f} hours"
    minutes = max(1, round(value / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def format_channels(channels) -> str:
    """``1 (mono)``, ``2 (stereo)``, otherwise the count (``0`` when unknown)."""
    try:
        count = int(channels or 0)
    except (TypeError, ValueError):
        return str(channels)
    return {1: "1 (mono)", 2: "2 (stereo)"}.get(count, str(count))


def format_lr(value: float) -> str:
    """A learning rate as RAVE's code writes it: ``1e-4`` rather than ``0.0001``."""
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"
