"""plot_series: the incremental decimation and smoothing behind MetricsPlot's
lines give what decimating or smoothing the whole series again would."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rave_gui.ui.widgets.plot_series import MinMaxDecimator, Series, SmoothedSeries, ema_smooth


def assert_decimation(values: np.ndarray, idx, n: int, decimator: MinMaxDecimator) -> None:
    """``idx`` draws every bucket's min and max, in order, with the first and last point."""
    if idx is None:
        assert n <= decimator.max_points
        return
    assert len(idx) <= decimator.max_points
    assert np.all(np.diff(idx) > 0) and idx[0] == 0 and idx[-1] == n - 1
    drawn = set(idx.tolist())
    for start in range(0, n, decimator.size):  # the buckets: decimator.size points from index 0
        bucket = values[start:min(n, start + decimator.size)]
        finite = np.isfinite(bucket)
        if not finite.any():
            continue
        low = start + int(np.argmin(np.where(finite, bucket, np.inf)))
        high = start + int(np.argmax(np.where(finite, bucket, -np.inf)))
        assert low in drawn and high in drawn, (start, decimator.size)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 20_000), max_points=st.integers(4, 600), seed=st.integers(0, 2 ** 16),
       nan_share=st.sampled_from([0.0, 0.1, 1.0]), chunks=st.lists(st.integers(1, 4000), min_size=1, max_size=12))
def test_incremental_min_max_keeps_every_bucket_extreme(n, max_points, seed, nan_share, chunks):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=n).cumsum()
    values[rng.random(n) < nan_share] = np.nan
    decimator, shown = MinMaxDecimator(max_points), 0
    for chunk in chunks * (1 + n // max(1, sum(chunks))):
        shown = min(n, shown + chunk)
        assert_decimation(values, decimator.indices(values, shown), shown, decimator)
        if shown == n:
            break


def test_incremental_min_max_keeps_a_single_spike_of_a_million_points():
    values = np.sin(np.arange(1_000_000) / 500.0)
    values[765_432] = 50.0
    decimator = MinMaxDecimator(4000)
    for shown in (300_000, 765_000, 765_433, 1_000_000):
        idx = decimator.indices(values, shown)
    assert values[idx].max() == 50.0 and 765_432 in idx and len(idx) <= 4000


@settings(max_examples=30, deadline=None)
@given(weight=st.sampled_from([0.01, 0.6, 0.9, 0.999]), seed=st.integers(0, 2 ** 16),
       constant=st.integers(0, 300), chunks=st.lists(st.integers(1, 700), min_size=1, max_size=10))
def test_incremental_smoothing_equals_smoothing_everything_again(weight, seed, constant, chunks):
    rng = np.random.default_rng(seed)
    values = np.concatenate((np.full(constant, 2.5), rng.normal(size=sum(chunks)).cumsum()))
    values[rng.random(values.size) < 0.05] = np.nan  # skipped, as TensorBoard does
    smoothed, shown = SmoothedSeries(weight), 0
    for chunk in [constant, *chunks]:
        shown = min(values.size, shown + chunk)
        np.testing.assert_allclose(smoothed.update(values, shown), ema_smooth(values[:shown], weight),
                                   rtol=1e-9, atol=1e-12)


def test_series_appends_grow_and_read_back_in_order():
    series = Series([1.0, 2.0], [10.0, 20.0], max_points=100)
    for step in range(3, 10_000):
        series.append(float(step), float(step) * 10)
    steps, values = series.data()
    np.testing.assert_array_equal(steps, np.arange(1, 10_000))
    np.testing.assert_array_equal(values, np.arange(1, 10_000) * 10.0)
    assert series.ordered and series.n == 9_999
    series.append(5.0, 1.0)  # out of order: drawn in arrival order, zoom windows not used
    assert not series.ordered and series.n == 10_000


def test_series_decimated_views_follow_appends():
    rng = np.random.default_rng(3)
    series = Series(max_points=200)
    everything = []
    for _ in range(50):
        new = rng.normal(size=int(rng.integers(1, 500)))
        for v in new:
            series.append(float(len(everything)), float(v))
            everything.append(v)
        steps, drawn = series.decimated()
        assert len(drawn) <= 200
        assert drawn.max() == max(everything) and drawn.min() == min(everything)
        smooth_steps, smooth = series.decimated(0.6)
        reference = ema_smooth(np.array(everything), 0.6)
        assert smooth.max() == pytest.approx(reference.max()) and smooth.min() == pytest.approx(reference.min())
    window_steps, window = series.decimated(0.0, slice(100, 150))
    np.testing.assert_array_equal(window, np.array(everything[100:150]))
