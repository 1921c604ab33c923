"""MetricsPlot's live drawing (BlitCanvas): new points inside the view only
redraw the lines over the cached axes; limits that must grow grow with headroom
and the axes are drawn again in slices; whatever the path, the picture is the
one a full draw gives."""
from __future__ import annotations

import numpy as np
import pytest

from rave_gui.ui.widgets.metrics_plot import HEADROOM, MetricsPlot


@pytest.fixture
def plot(qtbot):
    widget = MetricsPlot()
    qtbot.addWidget(widget)
    widget.resize(800, 600)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def points(first, last, every=1, seed=0):
    rng = np.random.default_rng(seed)
    return [{"step": s, "loss": 2.0 + rng.random(), "val_loss": 2.5, "lr": 1e-3}
            for s in range(first, last, every)]


def picture(plot) -> np.ndarray:
    return np.array(plot.canvas.get_renderer().buffer_rgba(), copy=True)


def live_redraw(plot, qtbot):
    """What the throttled timer does; waits for a sliced redraw of the axes to end."""
    plot._redraw()
    qtbot.waitUntil(lambda: not plot.canvas.rendering, timeout=5000)


def test_points_inside_the_view_redraw_the_lines_only(plot, qtbot):
    plot.update_metrics(points(0, 1000))
    plot.redraw_now()
    xlim, ylim = plot.ax_loss.get_xlim(), plot.ax_loss.get_ylim()
    full, sliced, blits = plot.canvas.full_draws, plot.canvas.sliced_draws, plot.canvas.blits
    plot.update_metrics({"step": 1001, "loss": 2.5, "lr": 1e-3})  # inside the limits (5 % margin)
    live_redraw(plot, qtbot)
    assert plot.canvas.blits == blits + 1
    assert (plot.canvas.full_draws, plot.canvas.sliced_draws) == (full, sliced)
    assert plot.ax_loss.get_xlim() == xlim and plot.ax_loss.get_ylim() == ylim
    assert plot._lines["loss"][0].get_xdata()[-1] == 1001


def test_points_beyond_the_view_grow_the_limits_with_headroom(plot, qtbot):
    plot.update_metrics(points(0, 1000))
    plot.redraw_now()
    sliced = plot.canvas.sliced_draws
    plot.update_metrics(points(1000, 2000, seed=1))
    plot._redraw()
    assert plot.canvas.rendering  # the axes again, a slice at a time
    qtbot.waitUntil(lambda: not plot.canvas.rendering, timeout=5000)
    assert plot.canvas.sliced_draws == sliced + 1
    x0, x1 = plot.ax_loss.get_xlim()
    assert x1 >= 1999 + HEADROOM * 0.9 * 1999  # room ahead for the next points
    blits = plot.canvas.blits
    plot.update_metrics(points(2000, 2300, seed=2))  # they fit: lines only
    live_redraw(plot, qtbot)
    assert plot.canvas.blits == blits + 1 and plot.ax_loss.get_xlim() == (x0, x1)


def test_blitted_and_sliced_pictures_equal_a_full_draw(plot, qtbot):
    plot.update_metrics(points(0, 500))
    plot.redraw_now()
    plot.update_metrics(points(500, 510, seed=3))
    live_redraw(plot, qtbot)  # a blit
    blitted = picture(plot)
    plot.canvas.draw()
    np.testing.assert_array_equal(blitted, picture(plot))
    plot.update_metrics(points(510, 5000, seed=4))
    plot.term_actions["val_loss"].setChecked(False)  # the legend changes too
    plot.redraw_now()
    plot.term_actions["val_loss"].setChecked(True)
    plot.update_metrics(points(5000, 9000, seed=5))
    live_redraw(plot, qtbot)  # limits and legend changed: a sliced redraw of the axes
    sliced = picture(plot)
    plot.canvas.draw()
    np.testing.assert_array_equal(sliced, picture(plot))


def test_a_full_draw_during_a_sliced_one_wins(plot, qtbot):
    plot.update_metrics(points(0, 100))
    plot.redraw_now()
    plot.update_metrics(points(100, 5000, seed=1))
    plot._redraw()
    assert plot.canvas.rendering
    plot.set_history({"loss": [(1, 1.0), (2, 0.5)]})  # another run: drawn at once
    assert not plot.canvas.rendering
    expected = picture(plot)
    qtbot.wait(50)  # the cancelled slices never come back to draw over it
    np.testing.assert_array_equal(picture(plot), expected)
    np.testing.assert_array_equal(plot._lines["loss"][0].get_xdata(), [1, 2])


def test_the_drawn_line_keeps_the_min_and_max_of_a_long_live_run(plot, qtbot):
    rng = np.random.default_rng(7)
    steps = np.arange(300_000, dtype=float)
    values = rng.normal(size=steps.size).cumsum()
    plot.set_history({"loss": (steps, values)})
    extra = []
    for step in range(300_000, 320_000):
        value = float(rng.normal())
        extra.append(value)
        plot.update_metrics({"step": step, "loss": value if step != 311_111 else 1e6})
    live_redraw(plot, qtbot)
    y = plot._lines["loss"][0].get_ydata()
    assert len(y) <= 4000
    assert y.max() == 1e6 and y.min() == min(values.min(), min(extra))
    assert plot.ax_loss.get_ylim()[1] >= 1e6


def test_history_arrays_are_taken_as_they_are(plot):
    class Stored:  # what TrainingManager.get_metric_history returns: arrays behind a sequence
        def __init__(self, steps, values):
            self.steps, self.values = np.asarray(steps), np.asarray(values)

        def __iter__(self):
            raise AssertionError("read point by point")

    plot.set_history({"loss": Stored([3, 1, 2], [0.3, 0.1, 0.2]), "lr": Stored([1, 2], [1e-3, 1e-4])})
    np.testing.assert_array_equal(plot._lines["loss"][0].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(plot._lines["loss"][0].get_ydata(), [0.1, 0.2, 0.3])
    assert plot.lower_key == "lr"
