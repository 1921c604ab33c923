"""core.formatting: one formatter for each quantity the app shows."""
from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rave_gui.core.formatting import (
    MISSING, format_channels, format_clock, format_duration, format_lr, format_rough_duration,
)

SETTINGS = settings(max_examples=300, deadline=None, database=None)


@pytest.mark.parametrize("seconds, expected", [
    (None, "–"), (float("nan"), "–"), (-1, "–"), (-0.5, "–"), (float("inf"), "–"),
    (0, "0:00:00"), (0.99, "0:00:00"), (59.9, "0:00:59"), (61, "0:01:01"), (3600, "1:00:00"),
    (90_061, "25:01:01"), (360_000, "100:00:00"),
])
def test_format_clock(seconds, expected):
    assert format_clock(seconds) == expected


@SETTINGS
@given(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**9, 10**9)))
def test_format_clock_is_hours_minutes_seconds_or_a_dash(seconds):
    text = format_clock(seconds)
    if seconds is None or math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        assert text == MISSING == "\u2013"
        return
    match = re.fullmatch(r"(\d+):(\d\d):(\d\d)", text)
    assert match, text
    h, m, s = map(int, match.groups())
    assert m < 60 and s < 60 and h * 3600 + m * 60 + s == int(seconds)


@pytest.mark.parametrize("seconds, expected", [
    (29.72154195011338, "29.7 s"), (0, "0.0 s"), (59.94, "59.9 s"), (60, "1:00"), (61.4, "1:01"),
    (3599.6, "1:00:00"), (3661, "1:01:01"), (None, "–"), (float("nan"), "–"), (-3, "–"),
])
def test_format_duration(seconds, expected):
    assert format_duration(seconds) == expected


@pytest.mark.parametrize("seconds, expected", [
    (0, "1 minute"), (30, "1 minute"), (600, "10 minutes"), (7199, "120 minutes"), (7200, "2.0 hours"),
    (500_000, "5.8 days"), (2 * 86_400, "2.0 days"), (None, "–"), (float("nan"), "–"),
])
def test_format_rough_duration(seconds, expected):
    assert format_rough_duration(seconds) == expected


@pytest.mark.parametrize("channels, expected", [
    (1, "1 (mono)"), (2, "2 (stereo)"), (6, "6"), (0, "0"), (None, "0"), ("2", "2 (stereo)"),
])
def test_format_channels(channels, expected):
    assert format_channels(channels) == expected


@pytest.mark.parametrize("value, expected", [(1e-4, "1e-4"), (0.001, "1e-3"), (1e-3, "1e-3"), (0.5, "5e-1"),
                                             (float("nan"), "nan")])
def test_format_lr(value, expected):
    assert format_lr(value) == expected
