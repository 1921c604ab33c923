"""The data behind MetricsPlot's lines: growing series, min/max decimation and
TensorBoard's EMA smoothing, both also kept up to date incrementally.

A live run appends points; what was drawn for the older points never changes.
So a redraw costs what is new, not the length of the run:

* ``MinMaxDecimator`` keeps, for buckets of ``2**k`` consecutive points aligned at
  the first point, the index of each bucket's min and max. New points fill new
  buckets; when there would be too many, pairs of buckets merge (``k`` grows).
  Every peak and trough stays a drawn point, as with ``decimate_minmax``.
* ``SmoothedSeries`` carries the EMA's state (the last accumulator and how many
  finite points it has seen), so smoothing new points costs only those points.

No Qt and no matplotlib here: plain numpy, tested on its own.
"""
from __future__ import annotations

import itertools

import numpy as np


def decimate_minmax(steps, values, max_points: int):
    """Keep, per bucket of consecutive points, the min and the max (in their
    original order), plus the first and last points: at most ``max_points``
    points, every peak and trough kept. Input no longer than ``max_points``
    is returned unchanged."""
    steps, values = np.asarray(steps), np.asarray(values, dtype=float)
    n = values.size
    if n <= max_points:
        return steps, values
    size = -(-n // max(1, (max_points - 2) // 2))  # points per bucket
    lo, hi = _finite_bounds(values)
    imin, imax = _bucket_arg(lo, size, np.argmin), _bucket_arg(hi, size, np.argmax)
    idx = _pairs_with_ends(imin, imax, n)
    return steps[idx], values[idx]


def _finite_bounds(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``values`` for argmin and for argmax: NaN and inf never win a bucket unless
    the whole bucket is non-finite."""
    finite = np.isfinite(values)
    if finite.all():
        return values, values
    return np.where(finite, values, np.inf), np.where(finite, values, -np.inf)


def _bucket_arg(values: np.ndarray, size: int, arg) -> np.ndarray:
    """Index of ``arg`` (argmin/argmax) in every run of ``size`` points."""
    rows = values.size // size
    idx = arg(values[:rows * size].reshape(rows, size), axis=1) + np.arange(rows) * size
    if values.size > rows * size:
        idx = np.append(idx, rows * size + arg(values[rows * size:]))
    return idx


def _pairs_with_ends(imin: np.ndarray, imax: np.ndarray, n: int) -> np.ndarray:
    """Each bucket's min and max in their order, the first and last point, no repeats."""
    idx = np.stack([np.minimum(imin, imax), np.maximum(imin, imax)], axis=1).ravel()
    idx = np.concatenate(([0], idx, [n - 1])).astype(np.intp)
    return idx[np.concatenate(([True], np.diff(idx) != 0))]


class MinMaxDecimator:
    """Incremental ``decimate_minmax`` over the prefix ``values[:n]`` of an array
    that only grows (its first points never change). ``indices(values, n)``
    returns the indices to draw: at most ``max_points``, in order, including
    each bucket's min and max and the first and last points."""

    def __init__(self, max_points: int):
        self.max_points = max_points
        self.max_buckets = max(1, (max_points - 2) // 2)
        self.size = 1       # points per bucket, a power of two
        self.imin = np.empty(0, dtype=np.intp)  # per complete bucket
        self.imax = np.empty(0, dtype=np.intp)
        self.done = 0       # points covered by the complete buckets

    def indices(self, values: np.ndarray, n: int) -> np.ndarray | None:
        """The indices to draw, or None for all of ``values[:n]`` (short enough)."""
        if n < self.done:
            raise ValueError("the series shrank: make a new decimator")
        if n <= self.max_points:
            return None
        while -(-n // self.size) > self.max_buckets:
            self._merge_pairs(values)
        complete = n // self.size * self.size
        if complete > self.done:
            lo, hi = _finite_bounds(values[self.done:complete])
            self.imin = np.concatenate((self.imin, _bucket_arg(lo, self.size, np.argmin) + self.done))
            self.imax = np.concatenate((self.imax, _bucket_arg(hi, self.size, np.argmax) + self.done))
            self.done = complete
        imin, imax = self.imin, self.imax
        if n > self.done:  # the bucket still filling
            lo, hi = _finite_bounds(values[self.done:n])
            imin = np.append(imin, self.done + int(np.argmin(lo)))
            imax = np.append(imax, self.done + int(np.argmax(hi)))
        return _pairs_with_ends(imin, imax, n)

    def _merge_pairs(self, values: np.ndarray) -> None:
        pairs = self.imin.size // 2
        self.imin = self._pick(values, self.imin, pairs, np.less_equal, np.inf)
        self.imax = self._pick(values, self.imax, pairs, np.greater_equal, -np.inf)
        self.size *= 2
        self.done = pairs * self.size

    @staticmethod
    def _pick(values, idx, pairs, better, worst) -> np.ndarray:
        """Of each pair of buckets, the index of the better extreme (the first on a tie,
        as argmin/argmax would pick); a non-finite value only wins against another."""
        left, right = idx[0:2 * pairs:2], idx[1:2 * pairs:2]
        a, b = values[left], values[right]
        a = np.where(np.isfinite(a), a, worst)
        b = np.where(np.isfinite(b), b, worst)
        return np.where(better(a, b), left, right)


def ema_smooth(values, weight: float) -> np.ndarray:
    """TensorBoard's scalar smoothing: a debiased EMA (``last / (1 - w**n)``,
    ``n`` counting finite points). Non-finite points pass through unchanged and
    are skipped; a constant series is returned as is."""
    values = np.asarray(values, dtype=float)
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    if weight == 0 or values.size == 0 or np.all(values == values[0]):
        return values.copy()
    return _ema_extend(values, weight, 0.0, 0)[0]


def _ema_extend(values: np.ndarray, weight: float, last: float, count: int):
    """Smooth ``values`` that follow ``count`` finite points whose (not yet
    debiased) EMA was ``last``. Returns the smoothed values, the new ``last``
    and the new ``count``."""
    out = values.copy()
    finite = np.isfinite(values)
    f = values[finite]
    if f.size == 0:
        return out, last, count
    acc = (1 - weight) * _linear_recurrence(f, weight) + last * _powers(weight, 1, f.size)
    out[finite] = acc / (1 - _powers(weight, count + 1, f.size))  # TensorBoard's debiasing
    return out, float(acc[-1]), count + f.size


def _powers(weight: float, first: int, n: int) -> np.ndarray:
    """``weight ** (first + i)`` for i < n, zero once they fall below 1e-300."""
    out = np.zeros(n)
    if weight <= 0:
        return out
    k = min(n, max(0, int(300 / -np.log10(weight)) + 2 - first))
    if k > 0:
        out[:k] = weight ** np.arange(first, first + k, dtype=float)
    return out


def _linear_recurrence(x: np.ndarray, a: float) -> np.ndarray:
    """``y[n] = a * y[n-1] + x[n]`` (``y[-1] = 0``, ``0 <= a < 1``) without a
    Python loop: in chunks short enough that ``a**-i`` stays finite,
    ``y = a**i * cumsum(x * a**-i)``; the chunk ends carry over by recursion."""
    n = x.size
    if a == 0 or n <= 1:
        return x.copy()
    size = int(min(n, 1024, max(2, 150 / -np.log10(a))))
    rows = -(-n // size)
    padded = np.zeros(rows * size)
    padded[:n] = x
    p = a ** np.arange(size)
    local = np.cumsum(padded.reshape(rows, size) / p, axis=1) * p
    ends = _linear_recurrence(local[:, -1], a ** size)  # y at the end of every chunk
    carry = np.concatenate(([0.0], ends[:-1]))
    return (local + carry[:, None] * (a * p)).ravel()[:n]


class SmoothedSeries:
    """``ema_smooth(values[:n], weight)`` kept up to date as ``values`` grows:
    ``update(values, n)`` smooths only the points added since the last call.
    A series constant so far is passed through (as ``ema_smooth`` does); the first
    point that differs triggers one full smoothing."""

    def __init__(self, weight: float):
        if not 0 < weight < 1:
            raise ValueError(f"smoothing weight must be in (0, 1), got {weight}")
        self.weight = weight
        self.out = np.empty(0)
        self.n = 0
        self._last, self._count = 0.0, 0
        self._constant = True

    def update(self, values: np.ndarray, n: int) -> np.ndarray:
        if n < self.n:
            raise ValueError("the series shrank: make a new SmoothedSeries")
        if n == self.n:
            return self.out[:n]
        if self.out.size < n:
            grown = np.empty(max(n, 2 * self.out.size, 64))
            grown[:self.n] = self.out[:self.n]
            self.out = grown
        new = values[self.n:n]
        if self._constant:
            if np.all(new == values[0]):
                self.out[self.n:n] = new
                self.n = n
                return self.out[:n]
            self._constant = False  # smooth everything seen so far, once
            self.n, self._last, self._count, new = 0, 0.0, 0, values[:n]
        smoothed, self._last, self._count = _ema_extend(new, self.weight, self._last, self._count)
        self.out[self.n:n] = smoothed
        self.n = n
        return self.out[:n]


def _room(data: np.ndarray, size: int) -> np.ndarray:
    """A new array of ``size`` starting with ``data`` (the rest uninitialized)."""
    out = np.empty(size)
    out[:data.size] = data
    return out


class Series:
    """Growing (step, value) arrays with amortized O(1) append, and the
    decimated and smoothed views of them the plot draws (kept incrementally).

    ``append`` only queues the point (a live run sends thousands a second, one
    call each); the arrays take the queued points in one go when next read.
    Growing copies the arrays (a few ms per million points); the series of one
    run fill up together, so each grows at its own fill level (``_FILL``), one
    at a time rather than all in the same call."""

    _FILL = itertools.cycle((1.0, 0.8, 0.9, 0.7, 0.85, 0.75, 0.95))

    def __init__(self, steps=(), values=(), max_points: int = 4000):
        steps, values = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
        self._n = steps.size
        size = self._n + max(64, self._n // 4)
        self.steps, self.values = _room(steps, size), _room(values, size)
        self._grow_at = size
        self.ordered = bool(np.all(steps[1:] >= steps[:-1]))
        self._last = float(steps[-1]) if steps.size else -np.inf
        self._queued: list[float] = []  # step, value, step, value, ...
        self.max_points = max_points
        self._decimator = MinMaxDecimator(max_points)
        self._smoothed: SmoothedSeries | None = None
        self._smoothed_decimator: MinMaxDecimator | None = None
        self._windows: dict = {}  # (i0, i1, weight) -> decimated window (zoomed views)

    @property
    def n(self) -> int:
        return self._n + len(self._queued) // 2

    def append(self, step: float, value: float) -> None:
        if step < self._last:
            self.ordered = False
        self._last = step
        self._queued += (step, value)

    def _take_queued(self) -> None:
        queued = self._queued
        if not queued:
            return
        self._queued = []
        new = np.array(queued, dtype=float)
        n, k = self._n, new.size // 2
        if n + k > self._grow_at:
            size = max(64, 2 * (n + k))
            self.steps = _room(self.steps[:n], size)
            self.values = _room(self.values[:n], size)
            self._grow_at = max(n + k, int(size * next(self._FILL)))
        self.steps[n:n + k] = new[0::2]
        self.values[n:n + k] = new[1::2]
        self._n = n + k

    def data(self):
        self._take_queued()
        return self.steps[:self._n], self.values[:self._n]

    def smoothed(self, weight: float) -> np.ndarray:
        """``ema_smooth(values, weight)``, computed only for the points added since."""
        if self._smoothed is None or self._smoothed.weight != weight:
            self._smoothed = SmoothedSeries(weight)
            self._smoothed_decimator = MinMaxDecimator(self.max_points)
            self._windows.clear()
        self._take_queued()
        return self._smoothed.update(self.values, self._n)

    def decimated(self, weight: float = 0.0, window: slice | None = None):
        """(steps, values) to draw: all points, or the min/max of each bucket when
        there are more than ``max_points``; ``weight > 0`` for the smoothed values;
        ``window`` for a zoomed range (indices)."""
        steps, values = self.data()
        n = self._n
        if weight > 0:
            values = self.smoothed(weight)
        if window is not None and (window.start or window.stop is not None):
            i0, i1 = max(0, window.start or 0), min(n, n if window.stop is None else window.stop)
            key = (i0, i1, weight)
            cached = self._windows.get(key)
            if cached is None:
                if len(self._windows) > 8:
                    self._windows.clear()
                cached = self._windows[key] = decimate_minmax(steps[i0:i1], values[i0:i1], self.max_points)
            return cached
        decimator = self._smoothed_decimator if weight > 0 else self._decimator
        idx = decimator.indices(values, n)
        return (steps, values) if idx is None else (steps[idx], values[idx])
