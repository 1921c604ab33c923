"""Readable ticks for the learning-rate axis (log scale, often under one decade).

RAVE's generator learning rate goes from 1e-3 to 1e-4 linearly, so the axis
spans a decade or less, and at the start of a run only a few points a hair
apart. Matplotlib's defaults then label every minor tick (labels overlap) or
print each tick as ``1e-3``. Here: major ticks at 1, 2 and 5 times a power of
ten (decades only, or every k-th decade, where those would be too many; plain
linear ticks when fewer than two fall in view), unlabelled minor ticks, and
labels with just enough significant digits to tell the visible ticks apart,
every k-th tick only where they would be closer than a label's height.
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib.ticker import Formatter, Locator, LogLocator, MaxNLocator, NullFormatter

MAX_DIGITS = 8


def short_number(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits: ``0.05``, ``120``, ``2.5e-4``."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if 1e-2 <= abs(value) < 1e4:
        return f"{value:.{digits}g}"
    mantissa, exponent = f"{value:.{max(0, digits - 1)}e}".split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


class SignificantFormatter(Formatter):
    """Labels the visible ticks with the fewest significant digits (at least
    ``min_digits``) that make them all different, and blanks all but every
    k-th label when the ticks are closer than the axis has room for."""

    def __init__(self, min_digits: int = 1):
        self.min_digits = min_digits
        self.digits = 3

    def format_ticks(self, values):
        values = np.asarray(values, dtype=float)
        if values.size == 0:
            return []
        visible = np.ones(values.size, dtype=bool)
        if self.axis is not None:
            lo, hi = sorted(self.axis.get_view_interval())
            tol = 1e-9 * max(abs(lo), abs(hi))
            visible = (values >= lo - tol) & (values <= hi + tol)
        shown = np.flatnonzero(visible)
        room = max(1, self.axis.get_tick_space()) if self.axis is not None else shown.size
        every = max(1, math.ceil(shown.size / room))
        labelled = set(shown[::every].tolist())
        kept = [values[i] for i in sorted(labelled)]
        self.digits = self._digits_for(kept)
        return [short_number(v, self.digits) if i in labelled else "" for i, v in enumerate(values)]

    def _digits_for(self, values) -> int:
        for digits in range(self.min_digits, MAX_DIGITS + 1):
            if len({short_number(v, digits) for v in values}) == len(values):
                return digits
        return MAX_DIGITS

    def __call__(self, value, pos=None):
        return short_number(value, self.digits)

    def format_data_short(self, value):  # the toolbar's cursor read-out
        return short_number(value, 4)


class LogTicks(Locator):
    """Ticks for a log axis: 1-2-5 per decade, else decades, else every k-th
    decade, whichever fits the room the axis has; linear ticks (``MaxNLocator``)
    when fewer than two of those are in view."""

    def __call__(self):
        vmin, vmax = self.axis.get_view_interval()
        return self.tick_values(vmin, vmax)

    def tick_values(self, vmin, vmax):
        lo, hi = sorted((float(vmin), float(vmax)))
        if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= 0:
            return np.array([])
        if lo <= 0:
            minpos = self.axis.get_minpos() if self.axis is not None else hi / 10
            lo = min(hi, minpos if math.isfinite(minpos) and minpos > 0 else hi / 10)
        room = max(2, self.axis.get_tick_space()) if self.axis is not None else 9
        first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        decades = range(first, last + 1)
        ticks = np.array([])
        for subs in ((1, 2, 5), (1,)):
            ticks = np.array([float(f"{m}e{e}") for e in decades for m in subs])
            if _inside(ticks, lo, hi).sum() <= room:
                break
        else:
            stride = math.ceil(len(decades) / room)
            ticks = np.array([float(f"1e{e}") for e in decades if e % stride == 0])
        if _inside(ticks, lo, hi).sum() < 2:
            linear = MaxNLocator(nbins=room, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
            ticks = linear[linear > 0]
        return ticks


def _inside(ticks: np.ndarray, lo: float, hi: float) -> np.ndarray:
    tol = 1e-9 * hi
    return (ticks >= lo - tol) & (ticks <= hi + tol)


def use_log_ticks(axis) -> None:
    """Install the locators and formatters above on a log-scaled ``axis``
    (``ax.yaxis``). Call it after ``set_yscale('log')``, which resets them."""
    if isinstance(axis.get_major_formatter(), SignificantFormatter):
        return
    axis.set_major_locator(LogTicks())
    axis.set_minor_locator(LogLocator(base=10, subs="auto"))
    axis.set_major_formatter(SignificantFormatter())
    axis.set_minor_formatter(NullFormatter())
