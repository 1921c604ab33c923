"""MetricsPlot: structure, live updates, throttling, decimation, smoothing."""
from __future__ import annotations

import time

import numpy as np
import pytest
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg, NavigationToolbar2QT
from matplotlib.colors import to_rgba

from rave_gui.ui.widgets.metrics_plot import (MAX_DISPLAY_POINTS, REDRAW_MS, MetricsPlot,
                                              decimate_minmax, ema_smooth)


@pytest.fixture
def plot(qtbot):
    widget = MetricsPlot()
    qtbot.addWidget(widget)
    widget.resize(800, 600)
    widget.show()
    return widget


def raw_line(plot, term):
    return plot._lines[term][0]


def smooth_line(plot, term):
    return plot._lines[term][1]


def count_draws(plot):
    """Every time the shown picture changes: a full draw, the lines blitted over the
    cached axes, or the end of a sliced redraw of the axes."""
    draws = []
    plot.canvas.frame_drawn.connect(lambda: draws.append(1))
    return draws


# ---- pure functions -------------------------------------------------------

def tensorboard_reference(values, weight):
    """A line-by-line transcription of TensorBoard's resmoothDataset."""
    last, num_accum, out = 0.0, 0, []
    is_constant = all(v == values[0] for v in values)
    for v in values:
        if is_constant or not np.isfinite(v):
            out.append(v)
            continue
        last = last * weight + (1 - weight) * v
        num_accum += 1
        out.append(last / (1 - weight ** num_accum))
    return np.array(out)


def test_ema_smooth_matches_hand_computed_example():
    # w=.5: last=.5 -> .5/.5=1; last=1.25 -> 1.25/.75; last=2.125 -> 2.125/.875
    np.testing.assert_allclose(ema_smooth([1.0, 2.0, 3.0], 0.5), [1.0, 5 / 3, 2.125 / 0.875])


def test_ema_smooth_skips_non_finite_values():
    out = ema_smooth([1.0, np.nan, 2.0, np.inf, 4.0], 0.5)
    # NaN/inf pass through and do not advance the debias counter
    np.testing.assert_allclose(out, [1.0, np.nan, 1.25 / 0.75, np.inf, 2.625 / 0.875])


def test_ema_smooth_zero_weight_and_constant_series_unchanged():
    values = np.array([3.0, 1.0, 2.0])
    np.testing.assert_array_equal(ema_smooth(values, 0.0), values)
    np.testing.assert_array_equal(ema_smooth([2.5] * 5, 0.9), [2.5] * 5)
    with pytest.raises(ValueError):
        ema_smooth(values, 1.0)


@pytest.mark.parametrize("weight", [0.01, 0.6, 0.99])
def test_ema_smooth_long_series_matches_tensorboard_loop(weight):
    rng = np.random.default_rng(0)
    values = rng.normal(size=1000).cumsum()  # several 128-point chunks + a remainder
    values[[5, 300, 301]] = np.nan
    np.testing.assert_allclose(ema_smooth(values, weight), tensorboard_reference(values, weight),
                               rtol=1e-9, atol=1e-9)


def test_decimate_short_input_unchanged():
    steps, values = np.arange(10), np.linspace(0, 1, 10)
    out_steps, out_values = decimate_minmax(steps, values, 100)
    np.testing.assert_array_equal(out_steps, steps)
    np.testing.assert_array_equal(out_values, values)


def test_decimate_keeps_peaks_and_bounds_length():
    rng = np.random.default_rng(1)
    n = 1_000_003
    steps = np.arange(n)
    values = rng.normal(size=n).cumsum()
    values[123_457] = 1e6    # a single-sample spike
    values[876_543] = -1e6   # a single-sample trough
    out_steps, out_values = decimate_minmax(steps, values, 2000)
    assert len(out_steps) == len(out_values) <= 2000
    assert len(out_steps) > 1000
    assert out_values.max() == 1e6 and out_values.min() == -1e6
    assert 123_457 in out_steps and 876_543 in out_steps
    assert np.all(np.diff(out_steps) > 0)  # original order, no duplicates
    assert out_steps[0] == 0 and out_steps[-1] == n - 1  # the x extent is kept
    np.testing.assert_array_equal(values[out_steps], out_values)  # real points only


def test_decimate_keeps_local_extremes_of_every_bucket():
    values = np.tile([0.0, 5.0, -5.0, 1.0], 1000)  # every 4-point bucket has a +5 and a -5
    _, out = decimate_minmax(np.arange(values.size), values, 2002)  # 1000 buckets of 4
    assert np.all(out[1:-1:2] == 5.0) and np.all(out[2:-1:2] == -5.0)
    assert out[0] == 0.0 and out[-1] == 1.0  # first and last points


def test_decimate_ignores_nan_when_picking_extremes():
    values = np.arange(10_000, dtype=float)
    values[::7] = np.nan
    _, out = decimate_minmax(np.arange(values.size), values, 100)
    assert np.nanmax(out) == 9999.0 and np.nanmin(out) == 1.0


# ---- widget ---------------------------------------------------------------

def test_structure(plot):
    assert isinstance(plot.canvas, FigureCanvasQTAgg)
    assert isinstance(plot.toolbar, NavigationToolbar2QT)
    axes = plot.figure.axes
    assert len(axes) == 2
    assert [ax.get_title() for ax in axes] == ["Training Loss", "Learning Rate"]
    assert [plot.lower_combo.itemText(i) for i in range(plot.lower_combo.count())] == [
        "Learning rate", "KL beta (beta_factor)", "Fidelity (latent dimensions)"]


def test_update_metrics_adds_points(plot):
    plot.update_metrics({"step": 1, "loss": 2.0, "val_loss": 3.0})
    plot.update_metrics([{"step": 2, "loss": 1.5}, {"step": 3, "loss": 1.0, "val_loss": 2.5}])
    plot.redraw_now()
    x, y = raw_line(plot, "loss").get_data()
    np.testing.assert_array_equal(x, [1, 2, 3])
    np.testing.assert_array_equal(y, [2.0, 1.5, 1.0])
    np.testing.assert_array_equal(raw_line(plot, "val_loss").get_ydata(), [3.0, 2.5])
    history = plot.get_history()
    np.testing.assert_array_equal(history["loss"][0], [1, 2, 3])
    assert set(plot.history) == {"loss", "val_loss"}


def test_ignores_private_and_non_numeric_values(plot):
    plot.update_metrics({"step": 1, "loss": 1.0, "_source": 3.0, "note": "text", "flag": True,
                         "lr": None, 7: 1.0, "epoch": np.int64(3), "fidelity_0.95": np.float32(8)})
    plot.update_metrics({"loss": 5.0})  # no step: cannot be placed
    assert set(plot.get_history()) == {"loss", "epoch", "fidelity_0.95"}
    assert len(plot.get_history()["loss"][0]) == 1
    assert "epoch" not in plot.term_actions
    assert "fidelity_0.95" not in plot.term_actions  # a number of dimensions: the lower plot


def test_val_loss_dashed_orange_with_markers_loss_blue_solid(plot):
    plot.update_metrics([{"step": s, "loss": 1.0 / s, "val_loss": 2.0 / s} for s in range(1, 5)])
    plot.redraw_now()
    val = raw_line(plot, "val_loss")
    assert val.get_linestyle() == "--"
    assert to_rgba(val.get_color()) == to_rgba("tab:orange")
    assert val.get_marker() not in (None, "None", "", " ")
    loss = raw_line(plot, "loss")
    assert loss.get_linestyle() == "-"
    assert to_rgba(loss.get_color()) == to_rgba("tab:blue")
    assert loss.get_visible() and val.get_visible()


def test_lr_axis_log_scale_and_no_data_message(plot):
    plot.update_metrics({"step": 1, "loss": 1.0})
    plot.redraw_now()
    assert plot.ax_lower.get_yscale() == "log"
    assert plot.lower_message.get_visible()
    assert plot.lower_message.get_text() == "No learning-rate data logged for this run"
    assert plot.lower_key is None
    assert not plot.ax_lower.yaxis.get_visible()

    plot.update_metrics([{"step": 2, "loss": 0.9, "lr": 1e-4}, {"step": 3, "lr": 5e-5}])
    plot.redraw_now()
    assert not plot.lower_message.get_visible()
    assert plot.lower_key == "lr"
    assert plot.ax_lower.yaxis.get_visible()
    assert plot.ax_lower.get_title() == "Learning Rate"
    lr = plot.lower_lines["lr"]
    assert lr.get_visible() and to_rgba(lr.get_color()) == to_rgba("tab:green")
    np.testing.assert_array_equal(lr.get_ydata(), [1e-4, 5e-5])
    assert plot.ax_lower.get_yscale() == "log"
    assert "lr" not in plot.term_actions  # never drawn on the loss axis


def test_falls_back_to_beta_factor_with_honest_title(plot):
    plot.update_metrics([{"step": s, "loss": 1.0, "beta_factor": s / 10} for s in range(1, 4)])
    plot.redraw_now()
    assert plot.lower_combo.currentData() == "lr"
    assert plot.lower_key == "beta_factor"
    assert "no learning rate logged" in plot.ax_lower.get_title()
    assert "beta_factor" in plot.ax_lower.get_title()
    assert not plot.lower_message.get_visible()
    assert plot.ax_lower.get_yscale() == "linear"
    np.testing.assert_allclose(plot.lower_lines["beta_factor"].get_ydata(), [0.1, 0.2, 0.3])
    assert not plot.lower_lines["lr"].get_visible()


def test_beta_factor_choice(plot):
    plot.update_metrics([{"step": 1, "lr": 1e-3, "beta_factor": 0.0},
                         {"step": 2, "lr": 1e-3, "beta_factor": 0.05}])
    plot.redraw_now()
    assert plot.lower_key == "lr"
    plot.lower_combo.setCurrentIndex(1)
    plot.redraw_now()
    assert plot.lower_key == "beta_factor"
    assert plot.ax_lower.get_title() == "KL beta (beta_factor)"
    assert plot.lower_lines["beta_factor"].get_visible()
    assert not plot.lower_lines["lr"].get_visible()
    np.testing.assert_array_equal(plot.lower_lines["beta_factor"].get_ydata(), [0.0, 0.05])


def test_beta_factor_choice_without_data_says_so(plot):
    plot.lower_combo.setCurrentIndex(1)
    plot.update_metrics({"step": 1, "loss": 1.0, "lr": 1e-3})
    plot.redraw_now()
    assert plot.lower_key is None
    assert plot.lower_message.get_visible()
    assert plot.lower_message.get_text() == "No KL beta (beta_factor) data logged for this run"


def test_clear_empties(plot):
    plot.update_metrics([{"step": s, "loss": 1.0, "val_loss": 2.0, "lr": 1e-3,
                          "adversarial": 0.5} for s in range(5)])
    plot.redraw_now()
    assert plot.term_actions["adversarial"].isEnabled()
    plot.clear()
    assert plot.get_history() == {}
    assert not plot.term_actions["adversarial"].isEnabled()  # listed, but nothing to show
    assert not raw_line(plot, "loss").get_visible()
    assert not raw_line(plot, "val_loss").get_visible()
    assert plot.lower_message.get_visible()
    plot.update_metrics({"step": 10, "loss": 4.0})
    plot.redraw_now()
    np.testing.assert_array_equal(raw_line(plot, "loss").get_xdata(), [10])


def test_set_history_replaces_data_and_sorts(plot):
    plot.update_metrics({"step": 1, "loss": 9.0, "feature_matching": 3.0})
    plot.set_history({"loss": [(2, 0.5), (1, 1.0), (3, 0.25)], "lr": [(1, 1e-3), (3, 1e-4)]})
    assert set(plot.get_history()) == {"loss", "lr"}
    np.testing.assert_array_equal(raw_line(plot, "loss").get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(raw_line(plot, "loss").get_ydata(), [1.0, 0.5, 0.25])
    assert plot.lower_key == "lr"
    # round trip of get_history's own format
    plot.set_history(plot.get_history())
    np.testing.assert_array_equal(plot.get_history()["loss"][1], [1.0, 0.5, 0.25])


def test_update_metrics_does_not_draw_and_throttles(plot, qtbot):
    qtbot.wait(REDRAW_MS + 100)  # let the initial show/resize draws happen
    draws = count_draws(plot)
    for step in range(1000):
        plot.update_metrics({"step": step, "loss": 1.0 / (step + 1), "lr": 1e-3})
    assert draws == []  # nothing drawn synchronously
    qtbot.waitUntil(lambda: len(draws) >= 1, timeout=2000)
    qtbot.wait(2 * REDRAW_MS)
    assert 1 <= len(draws) <= 3
    assert len(raw_line(plot, "loss").get_xdata()) == 1000


def test_steady_stream_redraws_at_most_every_redraw_ms(plot, qtbot):
    qtbot.wait(REDRAW_MS + 100)
    draws = count_draws(plot)
    start = time.perf_counter()
    for step in range(1000):  # 10 points every ~10 ms, with the event loop running
        plot.update_metrics({"step": step, "loss": 1.0, "val_loss": 2.0})
        if step % 10 == 9:
            qtbot.wait(10)
    qtbot.wait(2 * REDRAW_MS)
    elapsed_ms = (time.perf_counter() - start) * 1000
    assert 2 <= len(draws) <= elapsed_ms / REDRAW_MS + 2
    assert len(raw_line(plot, "loss").get_xdata()) == 1000


def test_redraw_decimates_long_history(plot):
    n = 200_000
    steps = np.arange(n)
    values = np.sin(steps / 1000.0)
    values[150_001] = 50.0
    plot.set_history({"loss": (steps, values)})
    x, y = raw_line(plot, "loss").get_data()
    assert len(x) <= MAX_DISPLAY_POINTS
    assert y.max() == 50.0
    assert plot.ax_loss.get_ylim()[1] >= 50.0


def test_log_toggle_changes_yscale(plot):
    plot.update_metrics([{"step": s, "loss": 10.0 ** -s} for s in range(5)])
    plot.redraw_now()
    assert plot.ax_loss.get_yscale() == "linear"
    plot.log_check.setChecked(True)
    assert plot.ax_loss.get_yscale() == "log"
    plot.log_check.setChecked(False)
    assert plot.ax_loss.get_yscale() == "linear"


def test_term_selection_shows_and_hides_a_line(plot):
    plot.update_metrics([{"step": s, "loss": 1.0, "val_loss": 2.0, "feature_matching": 0.5,
                          "multiband_spectral_distance": 3.0, "beta_factor": 0.1}
                         for s in range(3)])
    plot.redraw_now()
    assert set(plot.term_actions) == {"loss", "val_loss", "feature_matching",
                                      "multiband_spectral_distance"}
    fm = plot.term_actions["feature_matching"]
    assert not fm.isChecked() and plot.term_actions["loss"].isChecked()
    assert not raw_line(plot, "feature_matching").get_visible()
    fm.setChecked(True)
    assert raw_line(plot, "feature_matching").get_visible()
    np.testing.assert_array_equal(raw_line(plot, "feature_matching").get_ydata(), [0.5] * 3)
    assert "feature_matching" in [t.get_text() for t in plot.ax_loss.get_legend().get_texts()]
    plot.term_actions["loss"].setChecked(False)
    assert not raw_line(plot, "loss").get_visible()
    assert "loss" not in [t.get_text() for t in plot.ax_loss.get_legend().get_texts()]


def test_smoothing_draws_faint_raw_and_solid_smoothed(plot):
    values = [1.0, 3.0, 2.0, 4.0]
    plot.update_metrics([{"step": s, "loss": v} for s, v in enumerate(values)])
    plot.redraw_now()
    assert not smooth_line(plot, "loss").get_visible()
    assert raw_line(plot, "loss").get_alpha() == 1.0
    plot.smooth_slider.setValue(60)
    assert plot.smooth_label.text() == "0.60"
    assert raw_line(plot, "loss").get_alpha() == 0.25
    smoothed = smooth_line(plot, "loss")
    assert smoothed.get_visible()
    np.testing.assert_allclose(smoothed.get_ydata(), tensorboard_reference(values, 0.6))
    np.testing.assert_array_equal(raw_line(plot, "loss").get_ydata(), values)


def test_val_loss_markers_thinned_on_long_history(plot):
    steps = np.arange(0, 100_000, 10)
    plot.set_history({"val_loss": (steps, np.cos(steps / 5000.0))})
    line = raw_line(plot, "val_loss")
    assert len(line.get_xdata()) > 1000
    assert line.get_markevery() == len(line.get_xdata()) // 300
    plot.set_history({"val_loss": [(s, 1.0 / (s + 1)) for s in range(50)]})
    assert raw_line(plot, "val_loss").get_markevery() == 1


def test_zoom_redecimates_the_visible_range_and_home_restores(plot, qtbot):
    n = 1_000_000
    steps = np.arange(n)
    plot.set_history({"loss": (steps, np.sin(steps / 50.0)), "lr": (steps, np.full(n, 1e-3))})
    assert len(raw_line(plot, "loss").get_xdata()) <= MAX_DISPLAY_POINTS
    plot.ax_loss.set_xlim(500_000, 501_000)  # what the zoom tool does: autoscale off
    plot.redraw_now()
    x = raw_line(plot, "loss").get_xdata()
    # every point of the window at full resolution, plus one neighbour on each side
    np.testing.assert_array_equal(x, np.arange(499_999, 501_002))
    assert len(plot.lower_lines["lr"].get_xdata()) == 1003
    assert plot.ax_lower.get_xlim() == (500_000, 501_000)  # shared x axis

    draws = count_draws(plot)
    plot.ax_loss.set_xlim(600_000, 600_500)  # a pan: re-decimated by the throttled timer
    qtbot.waitUntil(lambda: len(draws) >= 1, timeout=2000)
    assert raw_line(plot, "loss").get_xdata()[0] == 599_999

    plot.toolbar.home()
    plot.redraw_now()
    assert plot.ax_loss.get_autoscalex_on()
    x = raw_line(plot, "loss").get_xdata()
    assert x[0] == 0 and x[-1] == n - 1 and len(x) <= MAX_DISPLAY_POINTS
    plot.update_metrics({"step": 2 * n, "loss": 0.0})
    plot.redraw_now()
    assert plot.ax_loss.get_xlim()[1] >= 2 * n  # live data moves the view again


def test_hidden_widget_does_not_draw_until_shown(plot, qtbot):
    qtbot.wait(REDRAW_MS + 100)
    plot.hide()
    draws = count_draws(plot)
    plot.update_metrics({"step": 1, "loss": 1.0})
    qtbot.wait(2 * REDRAW_MS)
    assert draws == []
    assert len(raw_line(plot, "loss").get_xdata()) == 0
    plot.show()
    qtbot.waitUntil(lambda: len(raw_line(plot, "loss").get_xdata()) == 1, timeout=2000)
    qtbot.waitUntil(lambda: len(draws) >= 1, timeout=2000)


def test_new_terms_get_distinct_colours(plot):
    terms = ["regularization", "feature_matching", "adversarial", "loss_dis", "pred_real"]
    plot.update_metrics({"step": 0, **{t: 1.0 for t in terms}})
    colours = {to_rgba(raw_line(plot, t).get_color()) for t in ["loss", "val_loss", *terms]}
    assert len(colours) == len(terms) + 2
    assert list(plot.term_actions) == ["loss", "val_loss", *terms]


# ---- phases, fidelity, legend, empty plot, learning-rate ticks -----------------

PHASE_2_TEXT = "phase 2: adversarial training"
ADVERSARIAL = ("feature_matching", "adversarial", "loss_dis", "pred_real", "pred_fake")


def rave_points(last_step, phase_1=None, every=1):
    """Points shaped like RAVE's: the adversarial terms from phase_1 on."""
    points = []
    for step in range(0, last_step + 1, every):
        point = {"step": step, "loss": 5.0 - step / 100, "lr": 1e-3 - 9e-4 * step / 1000,
                 "multiband_spectral_distance": 3.0, "regularization": 0.1}
        if phase_1 is not None and step >= phase_1:
            point.update(feature_matching=2.0, adversarial=1.0, loss_dis=1.5, pred_real=0.4,
                         pred_fake=-0.4)
            point["loss"] += 3.0
        points.append(point)
    return points


def phase_visible(plot):
    return [line.get_visible() for line in plot.phase_lines] + [plot.phase_label.get_visible()]


def test_phase_marker_far_ahead_is_not_drawn_and_does_not_stretch_the_axis(plot):
    plot.update_metrics(rave_points(1000, every=50))
    plot.set_phase_1(1_000_000)
    plot.redraw_now()
    assert phase_visible(plot) == [False, False, False]
    assert plot.ax_loss.get_xlim()[1] < 2000


def test_phase_marker_shown_on_both_axes_once_the_axis_reaches_it(plot):
    plot.update_metrics(rave_points(150, phase_1=60))
    plot.set_phase_1(60)
    plot.redraw_now()
    assert phase_visible(plot) == [True, True, True]
    for line in plot.phase_lines:
        np.testing.assert_array_equal(line.get_xdata(), [60, 60])
    assert plot.phase_lines[1].axes is plot.ax_lower
    assert plot.phase_label.get_text() == PHASE_2_TEXT
    assert plot.phase_label.get_position()[0] == 60
    plot.set_phase_1(None)
    plot.redraw_now()
    assert phase_visible(plot) == [False, False, False]


def test_phase_marker_shows_ahead_only_when_the_data_is_near(plot):
    plot.set_phase_1(60)
    plot.update_metrics(rave_points(40))  # 40 < 80 % of 60: not yet
    plot.redraw_now()
    assert phase_visible(plot) == [False, False, False]
    assert plot.ax_loss.get_xlim()[1] < 60
    plot.update_metrics(rave_points(50)[41:])  # 50 >= 48: the axis extends to show it
    plot.redraw_now()
    assert phase_visible(plot) == [True, True, True]
    assert plot.ax_loss.get_xlim()[1] >= 60
    assert plot.ax_loss.get_autoscalex_on()  # still following the live data


def test_phase_marker_follows_zoom(plot):
    plot.update_metrics(rave_points(1000, every=50))
    plot.set_phase_1(5000)
    plot.ax_loss.set_xlim(0, 6000)  # the zoom tool: the axis now reaches the marker
    plot.redraw_now()
    assert phase_visible(plot) == [True, True, True]
    plot.ax_loss.set_xlim(0, 500)
    plot.redraw_now()
    assert phase_visible(plot) == [False, False, False]


def test_phase_marker_absent_without_data_and_bad_values_ignored(plot):
    plot.set_phase_1(0)
    plot.redraw_now()
    assert phase_visible(plot) == [False, False, False]  # nothing to mark on empty axes
    plot.set_phase_1("soon")
    assert plot.phase_1 is None
    plot.set_phase_1(np.int64(60))
    assert plot.phase_1 == 60


def test_phase_marker_short_label_on_a_small_plot(plot, qtbot):
    plot.resize(500, 330)
    qtbot.waitUntil(lambda: plot.phase_label.get_text() == "phase 2", timeout=2000)
    plot.resize(800, 600)
    qtbot.waitUntil(lambda: plot.phase_label.get_text() == PHASE_2_TEXT, timeout=2000)


def test_adversarial_terms_offered_once_they_appear(plot):
    plot.update_metrics(rave_points(59, phase_1=60))
    plot.redraw_now()
    assert not set(ADVERSARIAL) & set(plot.term_actions)
    plot.update_metrics(rave_points(80, phase_1=60)[60:])
    plot.redraw_now()
    for term in ADVERSARIAL:
        action = plot.term_actions[term]
        assert action.isEnabled() and not action.isChecked() and action.toolTip()
    menu = plot.terms_menu.actions()
    sections = [a for a in menu if a.isSeparator()]
    assert [a.text() for a in sections] == ["Phase 2 (adversarial)"]
    after = [a.text() for a in menu[menu.index(sections[0]) + 1:]]
    assert after == list(ADVERSARIAL)  # grouped under their heading, in arrival order
    plot.update_metrics({"step": 81, "fullband_spectral_distance": 2.0})
    menu = [a.text() for a in plot.terms_menu.actions()]
    assert menu.index("fullband_spectral_distance") < menu.index("Phase 2 (adversarial)")
    plot.term_actions["loss_dis"].setChecked(True)
    np.testing.assert_array_equal(raw_line(plot, "loss_dis").get_xdata(), np.arange(60, 81))


def test_adversarial_terms_from_a_past_run(plot):
    history = {"loss": [(s, 1.0) for s in range(10)], "adversarial": [(s, 0.5) for s in range(5, 10)]}
    plot.set_history(history)
    assert "adversarial" in plot.term_actions and plot.term_actions["adversarial"].isEnabled()


FIDELITY = {"fidelity_0.99": 30, "fidelity_0.8": 4, "fidelity_0.95": 12, "fidelity_0.9": 8}


def test_fidelity_on_the_lower_plot(plot):
    plot.update_metrics(rave_points(100, every=10))
    plot.update_metrics([{"step": s, **FIDELITY} for s in (29, 59)])
    plot.redraw_now()
    assert not any(k.startswith("fidelity") for k in plot.term_actions)
    assert plot.lower_key == "lr"
    plot.lower_combo.setCurrentIndex(plot.lower_combo.findData("fidelity"))
    plot.redraw_now()
    assert plot.lower_key == "fidelity"
    assert plot.ax_lower.get_title() == "Fidelity: latent dimensions needed"
    assert plot.ax_lower.get_yscale() == "linear"
    assert not plot.lower_message.get_visible()
    assert not any(line.get_visible() for line in plot.lower_lines.values())
    legend = plot.ax_lower.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["80 %", "90 %", "95 %", "99 %"]
    line = plot.fidelity_lines["fidelity_0.95"]
    assert line.get_visible()
    np.testing.assert_array_equal(line.get_xdata(), [29, 59])
    np.testing.assert_array_equal(line.get_ydata(), [12, 12])
    ticks = [t for t in plot.ax_lower.get_yticks() if float(t).is_integer()]
    assert len(ticks) == len(plot.ax_lower.get_yticks())  # whole numbers of dimensions
    plot.lower_combo.setCurrentIndex(0)
    plot.redraw_now()
    assert plot.ax_lower.get_legend() is None
    assert not any(line.get_visible() for line in plot.fidelity_lines.values())


def test_fidelity_choice_without_data_says_why(plot):
    plot.update_metrics(rave_points(100, every=10))
    plot.lower_combo.setCurrentIndex(plot.lower_combo.findData("fidelity"))
    plot.redraw_now()
    assert plot.lower_key is None
    assert plot.lower_message.get_visible()
    assert "No fidelity logged" in plot.lower_message.get_text()
    assert "before phase 2" in plot.lower_message.get_text()


def display_points(line):
    x, y = line.get_data()
    return line.axes.transData.transform(np.column_stack([x, y]))


@pytest.mark.parametrize("rising", [True, False])
def test_legend_never_covers_the_newest_points(plot, rising):
    sign = 1 if rising else -1  # newest points at the top right, or the bottom right
    points = [{"step": s, "loss": 5 + sign * s / 10, "val_loss": 5 + sign * s / 9,
               "multiband_spectral_distance": 4 + sign * s / 11} for s in range(100)]
    plot.update_metrics(points)
    plot.term_actions["multiband_spectral_distance"].setChecked(True)
    plot.redraw_now()
    legend = plot.ax_loss.get_legend()
    box = legend.get_window_extent(plot.canvas.get_renderer())
    assert len(legend.get_texts()) == 3
    for term in ("loss", "val_loss", "multiband_spectral_distance"):
        for x, y in display_points(raw_line(plot, term))[-10:]:
            assert not box.contains(x, y), term
    axes_box = plot.ax_loss.get_window_extent()
    assert box.x0 >= axes_box.x1  # beside the axes, not over them
    assert box.x1 <= plot.figure.bbox.x1  # and within the figure


def test_legend_margin_follows_its_width(plot):
    plot.update_metrics([{"step": s, "loss": 1.0, "multiband_spectral_distance": 2.0}
                         for s in range(5)])
    plot.redraw_now()
    narrow = plot.ax_loss.get_position().x1
    plot.term_actions["multiband_spectral_distance"].setChecked(True)
    plot.redraw_now()
    assert plot.ax_loss.get_position().x1 < narrow  # room for the longer label
    plot.term_actions["multiband_spectral_distance"].setChecked(False)
    plot.redraw_now()
    assert plot.ax_loss.get_position().x1 == pytest.approx(narrow)


def test_empty_plot_says_why(plot):
    plot.redraw_now()
    assert plot.loss_message.get_visible()
    assert plot.loss_message.get_text() == "No points yet: RAVE logs the losses every 50 steps"
    assert not plot.ax_loss.yaxis.get_visible()
    assert not plot.ax_lower.xaxis.get_visible()  # no -0.04 ... 0.04 step axis
    plot.set_log_every(5)
    plot.redraw_now()
    assert plot.loss_message.get_text() == "No points yet: RAVE logs the losses every 5 steps"
    plot.set_log_every(None)
    plot.redraw_now()
    assert plot.loss_message.get_text().endswith("every 50 steps")

    plot.update_metrics({"step": 3, "lr": 1e-3})  # the launcher's lr comes every step
    plot.redraw_now()
    assert plot.loss_message.get_visible()  # still no loss
    assert plot.ax_lower.xaxis.get_visible()

    plot.update_metrics({"step": 50, "loss": 2.0})
    plot.redraw_now()
    assert not plot.loss_message.get_visible()
    assert plot.ax_loss.yaxis.get_visible()

    plot.term_actions["loss"].setChecked(False)
    plot.redraw_now()
    assert plot.loss_message.get_visible()
    assert plot.loss_message.get_text() == "No term selected: choose one under Terms"

    plot.clear()
    assert plot.loss_message.get_text().startswith("No points yet")


def lr_labels(plot):
    """The visible, labelled tick labels of the learning-rate axis, and their boxes."""
    plot.canvas.draw()
    renderer = plot.canvas.get_renderer()
    y0, y1 = sorted(plot.ax_lower.get_ylim())
    labels = [t for t in plot.ax_lower.yaxis.get_ticklabels(which="both")
              if t.get_visible() and t.get_text() and y0 <= t.get_position()[1] <= y1]
    return [t.get_text() for t in labels], [t.get_window_extent(renderer) for t in labels]


def assert_readable(texts, boxes):
    assert len(texts) >= 1
    assert len(set(texts)) == len(texts), texts  # never every tick "1e-3"
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), texts


@pytest.mark.parametrize("lrs", [
    [1e-3],                                    # one point
    [1e-3, 1e-3 - 9e-10, 1e-3 - 1.8e-9],       # the first steps of a 1e6-step decay
    [1e-3, 5e-4, 1e-4],                        # the whole schedule: one decade
    [1e-3, 1e-6],                              # three decades
])
def test_learning_rate_ticks_readable(plot, lrs):
    plot.update_metrics([{"step": 50 * i, "loss": 1.0, "lr": v} for i, v in enumerate(lrs)])
    plot.redraw_now()
    assert plot.ax_lower.get_yscale() == "log"
    texts, boxes = lr_labels(plot)
    assert_readable(texts, boxes)
    y0, y1 = plot.ax_lower.get_ylim()
    assert y0 <= min(lrs) and max(lrs) <= y1


def test_learning_rate_ticks_readable_when_zoomed_into_a_narrow_range(plot):
    plot.update_metrics([{"step": s, "loss": 1.0, "lr": 1e-3 - 1e-9 * s} for s in range(100)])
    plot.redraw_now()
    plot.ax_lower.set_ylim(1e-3 - 1e-7, 1e-3)  # a zoom far inside one decade
    texts, boxes = lr_labels(plot)
    assert len(texts) >= 2
    assert_readable(texts, boxes)


def test_learning_rate_ticks_on_a_small_plot(plot):
    plot.resize(500, 330)
    plot.update_metrics([{"step": s, "loss": 1.0, "lr": v}
                         for s, v in enumerate(np.geomspace(1e-3, 1e-4, 50))])
    plot.redraw_now()
    assert_readable(*lr_labels(plot))


def test_short_number_and_log_ticks():
    from rave_gui.ui.widgets.plot_ticks import LogTicks, short_number
    assert short_number(1e-3) == "1e-3"
    assert short_number(2.5e-4) == "2.5e-4"
    assert short_number(0.05) == "0.05"
    assert short_number(120.0) == "120"
    assert short_number(9.9994e-4, 5) == "9.9994e-4"
    assert short_number(0.0) == "0"
    ticks = LogTicks().tick_values(1e-4, 1e-3)
    np.testing.assert_allclose(ticks[(ticks >= 1e-4) & (ticks <= 1e-3)], [1e-4, 2e-4, 5e-4, 1e-3])
    narrow = LogTicks().tick_values(9.99e-4, 1e-3)  # no 1-2-5 tick inside: linear ticks
    assert ((narrow >= 9.99e-4) & (narrow <= 1e-3)).sum() >= 2
    wide = LogTicks().tick_values(1e-12, 1.0)  # 13 decades: every k-th decade only
    assert len(wide) <= 9 and np.all(wide > 0)
