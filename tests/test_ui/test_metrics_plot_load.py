"""MetricsPlot.load_history: a stored run shown from the history cache at once; one
recorded before the cache existed shows an overview at once and its whole history
when a background thread has read (and cached) it."""
from __future__ import annotations

import numpy as np
import pytest

from rave_gui.backend import history_cache
from rave_gui.ui.widgets import metrics_plot
from rave_gui.ui.widgets.metrics_plot import MetricsPlot

POINTS = 6_000  # per key: over the (lowered) synchronous budget, in a few chunks


@pytest.fixture
def plot(qtbot, monkeypatch):
    monkeypatch.setattr(metrics_plot, "SYNC_TABLE_ROWS", 1_000)
    widget = MetricsPlot()
    qtbot.addWidget(widget)
    widget.resize(800, 600)
    widget.show()
    return widget


def run(manager, db, points=POINTS, cold=True) -> int:
    exp_id = int(db.execute("INSERT INTO experiments (name, status, config) VALUES ('r', 'completed', '{}')")
                 .lastrowid)
    rng = np.random.default_rng(0)
    manager.update_training_metrics(exp_id, [{"step": 50 * (i + 1), "loss": float(rng.random()),
                                              "val_loss": float(rng.random()), "lr": 1e-3 / (1 + i)}
                                             for i in range(points)])
    if cold:
        history_cache.drop_chunks(db, exp_id)
    return exp_id


def table(manager, exp_id) -> dict:
    return {key: (np.asarray(s.steps, dtype=float), s.values) for key, s in manager.get_metric_history(exp_id).items()}


def assert_shows(plot, expected: dict):
    shown = plot.history
    assert set(shown) == set(expected)
    for key, (steps, values) in expected.items():
        assert np.array_equal(shown[key][0], steps) and np.array_equal(shown[key][1], values), key


def test_a_cached_run_is_shown_at_once(plot, manager, db):
    exp_id = run(manager, db, cold=False)
    plot.load_history(manager, exp_id)
    assert not plot.loading and not plot.loading_label.isVisible()
    assert_shows(plot, table(manager, exp_id))


def test_a_run_not_cached_shows_an_overview_then_its_whole_history(plot, manager, db, qtbot):
    exp_id = run(manager, db)
    with qtbot.waitSignal(plot.history_loaded, timeout=30_000) as loaded:
        plot.load_history(manager, exp_id)
        assert plot.loading and plot.loading_label.isVisible()
        overview = plot.history
        assert set(overview) == {"loss", "val_loss", "lr"}
        assert 0 < overview["loss"][0].size < POINTS  # a look, not the history
        assert plot._lines["loss"][0].get_visible() and len(plot._lines["loss"][0].get_xdata())  # drawn
    assert loaded.args == [exp_id]
    assert not plot.loading and not plot.loading_label.isVisible()
    assert_shows(plot, table(manager, exp_id))
    qtbot.waitUntil(lambda: not plot.canvas.rendering)
    x0, x1 = plot.ax_loss.get_xlim()
    assert x0 <= 50 and x1 >= 50 * POINTS  # the view fits the whole run
    plot.load_history(manager, exp_id)  # cached by the background read: at once now
    assert not plot.loading


def test_points_that_arrive_while_loading_are_kept(plot, manager, db, qtbot):
    exp_id = run(manager, db)
    with qtbot.waitSignal(plot.history_loaded, timeout=30_000):
        plot.load_history(manager, exp_id)
        plot.update_metrics({"step": 50 * POINTS + 50, "loss": 7.0, "beta_factor": 0.5})
    steps, values = plot.history["loss"]
    assert steps[-1] == 50 * POINTS + 50 and values[-1] == 7.0
    assert steps.size == POINTS + 1
    assert plot.history["beta_factor"][1].tolist() == [0.5]


def test_other_data_shown_meanwhile_wins(plot, manager, db, qtbot, monkeypatch):
    jobs = []

    class Uncancellable(history_cache.BackgroundLoad):  # its result comes, late
        def __init__(self, *args):
            super().__init__(*args)
            jobs.append(self)

        def cancel(self):
            pass

    monkeypatch.setattr(history_cache, "BackgroundLoad", Uncancellable)
    exp_id = run(manager, db)
    other = run(manager, db, points=10, cold=False)
    emitted = []
    plot.history_loaded.connect(emitted.append)
    plot.load_history(manager, exp_id)
    plot.load_history(manager, other)  # the user selected another run meanwhile
    assert not plot.loading
    jobs[0].thread.join(30)
    qtbot.wait(100)  # the late result is delivered, and dropped
    assert emitted == []
    assert_shows(plot, table(manager, other))
    history_cache.drop_chunks(db, exp_id)
    plot.load_history(manager, exp_id)
    plot.clear()
    jobs[1].thread.join(30)
    qtbot.wait(100)
    assert emitted == [] and not plot.loading and plot.history == {}


def test_the_users_zoom_survives_the_whole_history_arriving(plot, manager, db, qtbot):
    exp_id = run(manager, db)
    with qtbot.waitSignal(plot.history_loaded, timeout=30_000):
        plot.load_history(manager, exp_id)
        plot.ax_loss.set_xlim(1000, 5000)  # zoomed in meanwhile
    assert plot.ax_loss.get_xlim() == (1000, 5000)
    assert_shows(plot, table(manager, exp_id))


def test_a_failed_load_keeps_the_overview_and_says_so(plot, manager, db, qtbot, monkeypatch):
    import threading

    class Failing:
        def __init__(self, db, experiment_id, done):
            self.thread = threading.Thread(target=done, args=(None, OSError("disk on fire")))
            self.thread.start()

        def cancel(self):
            pass

    monkeypatch.setattr(history_cache, "BackgroundLoad", Failing)
    exp_id = run(manager, db)
    plot.load_history(manager, exp_id)
    overview = plot.history
    qtbot.waitUntil(lambda: not plot.loading, timeout=5_000)
    assert "disk on fire" in plot.loading_label.text() and plot.loading_label.isVisible()
    assert plot.history["loss"][0].tolist() == overview["loss"][0].tolist()
