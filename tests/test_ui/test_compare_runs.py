"""CompareRunsDialog: overlaid curves, terms, smoothing, summary, settings diff, live points."""
from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_hex

from compare_runs_data import HISTORY_A, HISTORY_B, two_runs
from rave_gui.backend.compare import GIN_PREFIX
from rave_gui.ui.dialogs.compare_runs import SUMMARY_COLUMNS, CompareRunsDialog
from rave_gui.ui.widgets.metrics_plot import ema_smooth


@pytest.fixture
def runs(tmp_path):
    db, manager, ids = two_runs(tmp_path, second_status="running")
    yield manager, ids
    db.close()


@pytest.fixture
def dialog(qtbot, runs):
    manager, ids = runs
    widget = CompareRunsDialog(manager, ids)
    qtbot.addWidget(widget)
    widget.show()
    return widget


def expected(history, term):
    points = [(p["step"], p[term]) for p in history if term in p]
    return [s for s, _ in points], [v for _, v in points]


def visible_lines(dialog):
    return [line for line in dialog.ax.get_lines()
            if line.get_visible() and not line.get_label().startswith("_")]


def test_one_line_per_run_per_term_with_the_stored_data(dialog, runs):
    _manager, (a, b) = runs
    assert not dialog.isModal()
    assert dialog.selected_terms() == ["loss", "val_loss"]
    assert len(visible_lines(dialog)) == 4
    for exp_id, history in ((a, HISTORY_A), (b, HISTORY_B)):
        for term in ("loss", "val_loss"):
            line = dialog.lines[(exp_id, term)]
            assert line in visible_lines(dialog)
            steps, values = expected(history, term)
            np.testing.assert_array_equal(line.get_xdata(), steps)
            np.testing.assert_array_equal(line.get_ydata(), values)
    # a colour per run, a line style per term
    assert to_hex(dialog.lines[(a, "loss")].get_color()) == to_hex(dialog.lines[(a, "val_loss")].get_color())
    assert to_hex(dialog.lines[(a, "loss")].get_color()) != to_hex(dialog.lines[(b, "loss")].get_color())
    assert dialog.lines[(a, "loss")].get_linestyle() != dialog.lines[(a, "val_loss")].get_linestyle()
    legend = [t.get_text() for t in dialog.ax.get_legend().get_texts()]
    assert "run-a \u00b7 loss" in legend and "run-b \u00b7 val_loss" in legend


def test_terms_selector_hides_and_shows_a_term(dialog, runs):
    _manager, (a, b) = runs
    dialog.term_actions["val_loss"].setChecked(False)
    assert {line.get_label() for line in visible_lines(dialog)} == {"run-a \u00b7 loss", "run-b \u00b7 loss"}
    dialog.term_actions["val_loss"].setChecked(True)
    assert len(visible_lines(dialog)) == 4


def test_smoothing_slider_applies_tensorboard_ema(dialog, runs):
    _manager, (a, _b) = runs
    dialog.smooth_slider.setValue(60)
    assert dialog.smoothing() == pytest.approx(0.6)
    _steps, values = expected(HISTORY_A, "loss")
    np.testing.assert_allclose(dialog.lines[(a, "loss")].get_ydata(), ema_smooth(values, 0.6))
    raw = dialog.raw_lines[(a, "loss")]
    assert raw.get_visible()
    np.testing.assert_array_equal(raw.get_ydata(), values)
    assert len(visible_lines(dialog)) == 4  # the faint raw lines are not counted as runs
    dialog.smooth_slider.setValue(0)
    assert not raw.get_visible()
    np.testing.assert_array_equal(dialog.lines[(a, "loss")].get_ydata(), values)


def test_summary_table(dialog, runs):
    _manager, (a, b) = runs
    table = dialog.summary_table
    assert table.rowCount() == 2
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert headers == list(SUMMARY_COLUMNS)
    col = {name: i for i, name in enumerate(headers)}
    assert table.item(0, col["Run"]).text() == "run-a"
    assert table.item(0, col["Status"]).text() == "completed"
    assert table.item(1, col["Status"]).text() == "running"
    assert table.item(0, col["Steps"]).text() == "600 / 1,000"
    assert table.item(0, col["Best val_loss (step)"]).text() == "0.5 @ 400"
    assert table.item(1, col["Best val_loss (step)"]).text() == "0.3 @ 600"
    assert table.item(1, col["Best val_loss (step)"]).font().bold()  # the lowest of the runs
    assert not table.item(0, col["Best val_loss (step)"]).font().bold()
    assert table.item(0, col["Final loss"]).text() == "1"


def test_settings_diff_highlights_differences(dialog):
    table = dialog.diff_table
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert headers == ["Setting", "run-a", "run-b"]
    rows = {table.item(r, 0).text(): r for r in range(table.rowCount())}
    capacity, n_band, batch = rows[GIN_PREFIX + "CAPACITY"], rows[GIN_PREFIX + "N_BAND"], rows["batch_size"]
    assert [table.item(capacity, c).text() for c in (1, 2)] == ["48", "64"]
    assert table.item(capacity, 1).font().bold() and table.item(batch, 2).font().bold()
    assert table.item(capacity, 0).background().color() != table.item(n_band, 0).background().color()
    assert not table.item(n_band, 1).font().bold()
    # "Only differences" is on for two runs: equal rows hidden, shown again when off
    assert dialog.only_differences.isChecked()
    assert table.isRowHidden(n_band) and not table.isRowHidden(capacity)
    dialog.only_differences.setChecked(False)
    assert not table.isRowHidden(n_band)


def test_live_metrics_extend_the_line_after_the_coalescing_timer(qtbot, dialog, runs):
    _manager, (_a, b) = runs
    line = dialog.lines[(b, "loss")]
    draws = []
    dialog.canvas.mpl_connect("draw_event", draws.append)
    dialog.add_metrics(b, {"step": 700, "loss": 1.9})
    dialog.add_metrics(b, {"step": 800, "loss": 1.8, "val_loss": 0.25})
    dialog.add_metrics(12345, {"step": 900, "loss": 0.1})  # not a run shown here: ignored
    assert list(line.get_xdata()) == [100, 200, 400, 600]  # nothing drawn synchronously
    qtbot.waitUntil(lambda: list(line.get_xdata()) == [100, 200, 400, 600, 700, 800], timeout=5000)
    assert list(line.get_ydata())[-2:] == [1.9, 1.8]
    assert list(dialog.lines[(b, "val_loss")].get_xdata())[-1] == 800
    col = SUMMARY_COLUMNS.index("Best val_loss (step)")
    assert dialog.summary_table.item(1, col).text() == "0.25 @ 800"
    assert dialog.summary_table.item(1, SUMMARY_COLUMNS.index("Steps")).text() == "800 / 800"
    qtbot.waitUntil(lambda: len(draws) >= 1, timeout=5000)


def test_live_metrics_add_a_new_term(qtbot, dialog, runs):
    _manager, (a, _b) = runs
    dialog.add_metrics(a, {"step": 700, "loss": 0.9, "regularization": 0.01})
    assert "regularization" in dialog.term_actions
    assert not dialog.term_actions["regularization"].isChecked()
    dialog.term_actions["regularization"].setChecked(True)
    assert dialog.lines[(a, "regularization")].get_visible()
    assert list(dialog.lines[(a, "regularization")].get_ydata()) == [0.01]


def test_refresh_reads_status_changes(dialog, runs):
    manager, (_a, b) = runs
    manager.set_status(b, "completed")
    dialog.refresh()
    assert dialog.summary_table.item(1, SUMMARY_COLUMNS.index("Status")).text() == "completed"
    assert len(visible_lines(dialog)) == 4


def test_no_runs_is_refused(runs):
    manager, _ids = runs
    with pytest.raises(ValueError, match="at least one run"):
        CompareRunsDialog(manager, [])
