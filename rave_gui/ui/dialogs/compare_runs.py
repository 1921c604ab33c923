"""CompareRunsDialog: several runs side by side.

Top: the loss curves of every run on one plot (a colour per run, a line style
per term), with a terms selector, TensorBoard-like smoothing and a log scale.
Below, two tabs: a summary per run (``backend.compare.summarize``) and the
settings diff (``backend.compare.config_diff``: app settings and RAVE's
config.gin), differing rows highlighted. ``add_metrics`` feeds a live run;
the plot and summary are redrawn at most once per ``REDRAW_MS``.
"""
from __future__ import annotations

import math
import numbers

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg, NavigationToolbar2QT
from matplotlib.colors import TABLEAU_COLORS
from matplotlib.figure import Figure
from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtGui import QAction, QBrush, QColor, QFont
from PyQt6.QtWidgets import (QAbstractItemView, QCheckBox, QDialog, QHBoxLayout, QHeaderView,
                             QLabel, QMenu, QSlider, QSplitter, QTableWidget, QTableWidgetItem,
                             QTabWidget, QToolButton, QVBoxLayout, QWidget)

from rave_gui.backend.compare import MISSING, config_diff, run_duration, summarize, update_summary
from rave_gui.core.formatting import format_clock
from rave_gui.ui.widgets.metrics_plot import decimate_minmax, ema_smooth

REDRAW_MS = 500
MAX_DISPLAY_POINTS = 4000
DEFAULT_TERMS = ("loss", "val_loss")
NOT_TERMS = {"step", "epoch"}
RUN_COLORS = tuple(TABLEAU_COLORS.values())
TERM_STYLES = {"loss": dict(linestyle="-"), "val_loss": dict(linestyle="--", marker="o", markersize=3)}
OTHER_STYLES = (dict(linestyle=":"), dict(linestyle="-."), dict(linestyle=(0, (5, 1, 1, 1, 1, 1))))
DIFF_BRUSH = QBrush(QColor(255, 236, 170))
SUMMARY_COLUMNS = ("Run", "Status", "Steps", "Duration", "Final loss", "Best loss (step)",
                   "Final val_loss", "Best val_loss (step)")


class _Series:
    """(step, value) points of one run and one term, growing in amortized O(1)."""

    def __init__(self, points=()):
        pairs = np.asarray(list(points), dtype=float).reshape(-1, 2)
        order = np.argsort(pairs[:, 0], kind="stable")
        self.steps, self.values = pairs[order, 0].copy(), pairs[order, 1].copy()
        self.n = self.steps.size

    def add(self, step: float, value: float) -> None:
        if self.n and step <= self.steps[self.n - 1]:  # a resumed run re-logs steps: keep order
            index = int(np.searchsorted(self.steps[:self.n], step))
            if index < self.n and self.steps[index] == step:
                self.values[index] = value
                return
            steps, values = self.data()
            self.steps, self.values = np.insert(steps, index, step), np.insert(values, index, value)
            self.n += 1
            return
        if self.n == self.steps.size:
            self.steps = np.resize(self.steps, max(64, 2 * self.n))
            self.values = np.resize(self.values, self.steps.size)
        self.steps[self.n], self.values[self.n] = step, value
        self.n += 1

    def data(self):
        return self.steps[:self.n], self.values[:self.n]


def _number(value, digits: int = 4) -> str:
    if value is None or not math.isfinite(value):
        return MISSING
    return f"{value:.{digits}g}"


def _best(row: dict, key: str) -> str:
    value, step = row.get(f"best_{key}"), row.get(f"best_{key}_step")
    return MISSING if value is None else f"{_number(value)} @ {step:,}"


def _steps(row: dict) -> str:
    total = row.get("max_steps")
    return f"{row['step']:,} / {total:,}" if isinstance(total, int) else f"{row['step']:,}"


class CompareRunsDialog(QDialog):
    """Non-modal: ``show()`` it; it reads the runs once and then follows
    ``add_metrics`` (live points) and ``refresh`` (status changes)."""

    def __init__(self, manager, experiment_ids, parent=None):
        super().__init__(parent)
        self.manager = manager
        self.experiment_ids = list(dict.fromkeys(int(i) for i in experiment_ids))
        if not self.experiment_ids:
            raise ValueError("Select at least one run to compare.")
        self.setModal(False)
        self.setWindowTitle("Compare runs")
        self.resize(1000, 800)
        self.colors = {exp_id: RUN_COLORS[i % len(RUN_COLORS)]
                       for i, exp_id in enumerate(self.experiment_ids)}
        self._series: dict[int, dict[str, _Series]] = {}
        self._smooth_cache: dict[tuple, tuple] = {}
        self.lines: dict[tuple[int, str], object] = {}      # (id, term) -> shown Line2D
        self.raw_lines: dict[tuple[int, str], object] = {}  # (id, term) -> faint raw line when smoothing
        self.term_actions: dict[str, QAction] = {}
        self.summary: list[dict] = []
        self.names: dict[int, str] = {}
        self._summary_dirty = False

        # plot
        self.figure = Figure(figsize=(7, 4), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.ax = self.figure.add_subplot(1, 1, 1)
        self.ax.set_xlabel("step")
        self.ax.set_ylabel("loss")
        self.toolbar = NavigationToolbar2QT(self.canvas, self)
        self.terms_button = QToolButton(text="Terms")
        self.terms_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.terms_menu = QMenu(self.terms_button)
        self.terms_button.setMenu(self.terms_menu)
        self.log_check = QCheckBox("Log scale")
        self.log_check.toggled.connect(self._on_option_changed)
        self.smooth_slider = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=99)
        self.smooth_slider.setToolTip("Exponential moving average, as in TensorBoard (0 to 0.99)")
        self.smooth_slider.valueChanged.connect(self._on_option_changed)
        self.smooth_label = QLabel("0.00")
        controls = QHBoxLayout()
        for widget in (self.terms_button, self.log_check, QLabel("Smoothing:"), self.smooth_slider,
                       self.smooth_label):
            controls.addWidget(widget)
        plot_box = QWidget()
        plot_layout = QVBoxLayout(plot_box)
        plot_layout.setContentsMargins(0, 0, 0, 0)
        plot_layout.addWidget(self.toolbar)
        plot_layout.addWidget(self.canvas, 1)
        plot_layout.addLayout(controls)

        # summary
        self.summary_table = QTableWidget(0, len(SUMMARY_COLUMNS))
        self.summary_table.setHorizontalHeaderLabels(SUMMARY_COLUMNS)
        self.summary_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.summary_table.verticalHeader().setVisible(False)
        self.summary_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)

        # settings diff
        self.only_differences = QCheckBox("Only differences")
        self.only_differences.setChecked(len(self.experiment_ids) > 1)
        self.only_differences.toggled.connect(self._apply_diff_filter)
        self.diff_rows: list[tuple[str, list[str], bool]] = []
        self.diff_table = QTableWidget(0, 1 + len(self.experiment_ids))
        self.diff_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.diff_table.verticalHeader().setVisible(False)
        self.diff_table.setWordWrap(False)
        diff_box = QWidget()
        diff_layout = QVBoxLayout(diff_box)
        diff_layout.addWidget(self.only_differences)
        diff_layout.addWidget(self.diff_table, 1)

        self.tabs = QTabWidget()
        self.tabs.addTab(self.summary_table, "Summary")
        self.tabs.addTab(diff_box, "Settings")
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(plot_box)
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

        self._timer = QTimer(self, singleShot=True, interval=REDRAW_MS)
        self._timer.timeout.connect(self._redraw)
        self._duration_timer = QTimer(self, interval=1000)  # a live run's duration ticks
        self._duration_timer.timeout.connect(self._tick_durations)
        self.refresh()

    # -- data -------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read every run from the database (history, summary, settings) and
        redraw now; connect it to the controller's status changes."""
        histories = {exp_id: self.manager.get_metric_history(exp_id) for exp_id in self.experiment_ids}
        self.summary = summarize(self.manager, self.experiment_ids, histories=histories)
        self.names = {row["id"]: row["name"] for row in self.summary}
        self._series = {exp_id: {key: _Series(points) for key, points in history.items()
                                 if self._is_term(key)}
                        for exp_id, history in histories.items()}
        self._smooth_cache.clear()
        for terms in self._series.values():
            for term in terms:
                self._add_term(term)
        for term in DEFAULT_TERMS:
            self._add_term(term)
        self.diff_rows = config_diff(self.manager, self.experiment_ids)
        self._fill_diff()
        self._fill_summary()
        self.redraw_now()

    def add_metrics(self, experiment_id: int, metrics: dict) -> None:
        """One live step's metrics (``{"step": s, key: value, ...}``) of a run shown
        here (others are ignored). Nothing is drawn now: a redraw is scheduled."""
        if experiment_id not in self._series or not isinstance(metrics, dict):
            return
        step = metrics.get("step")
        if not _is_number(step):
            return
        series = self._series[experiment_id]
        for key, value in metrics.items():
            if not isinstance(key, str) or not self._is_term(key) or not _is_number(value) \
                    or not math.isfinite(value):
                continue
            if key not in series:
                series[key] = _Series()
                self._add_term(key)
            series[key].add(float(step), float(value))
        row = next(r for r in self.summary if r["id"] == experiment_id)
        self._summary_dirty |= update_summary(row, metrics)
        if not self._timer.isActive():
            self._timer.start()

    @staticmethod
    def _is_term(key: str) -> bool:
        return key not in NOT_TERMS and not key.startswith("_")

    # -- plot -------------------------------------------------------------------
    def selected_terms(self) -> list[str]:
        return [term for term, action in self.term_actions.items() if action.isChecked()]

    def smoothing(self) -> float:
        return self.smooth_slider.value() / 100

    def redraw_now(self) -> None:
        self._timer.stop()
        self._refresh_plot()
        self.canvas.draw()

    def _redraw(self) -> None:
        self._refresh_plot()
        if self._summary_dirty:
            self._summary_dirty = False
            self._fill_summary()
        self.canvas.draw_idle()

    def _line(self, exp_id: int, term: str):
        key = (exp_id, term)
        if key not in self.lines:
            others = [t for t in self.term_actions if t not in TERM_STYLES]
            style = dict(TERM_STYLES.get(term)
                         or OTHER_STYLES[others.index(term) % len(OTHER_STYLES)])
            color = self.colors[exp_id]
            label = f"{self.names.get(exp_id, exp_id)} \u00b7 {term}"
            self.lines[key] = self.ax.plot([], [], color=color, label=label, **style)[0]
            plain = {k: v for k, v in style.items() if not k.startswith("marker")}
            self.raw_lines[key] = self.ax.plot([], [], color=color, alpha=0.25,
                                               label=f"_{label} (raw)", **plain)[0]
        return self.lines[key], self.raw_lines[key]

    def _refresh_plot(self) -> None:
        weight = self.smoothing()
        self.smooth_label.setText(f"{weight:.2f}")
        scale = "log" if self.log_check.isChecked() else "linear"
        if self.ax.get_yscale() != scale:
            self.ax.set_yscale(scale)
        selected = set(self.selected_terms())
        for exp_id in self.experiment_ids:
            for term, series in self._series[exp_id].items():
                line, raw = self._line(exp_id, term)
                shown = term in selected and series.n > 0
                line.set_visible(shown)
                raw.set_visible(shown and weight > 0)
                if not shown:
                    continue
                steps, values = series.data()
                if weight > 0:
                    raw.set_data(*decimate_minmax(steps, values, MAX_DISPLAY_POINTS))
                    values = self._smoothed(exp_id, term, values, weight)
                line.set_data(*decimate_minmax(steps, values, MAX_DISPLAY_POINTS))
        for key, line in self.lines.items():  # terms this run has no series for
            if key[1] not in self._series[key[0]]:
                line.set_visible(False)
                self.raw_lines[key].set_visible(False)
        handles = [line for line in self.lines.values() if line.get_visible()]
        if handles:
            self.ax.legend(handles=handles, loc="upper right", fontsize="small")
        elif self.ax.get_legend():
            self.ax.get_legend().remove()
        if self.ax.get_autoscalex_on() or self.ax.get_autoscaley_on():
            self.ax.relim(visible_only=True)
            self.ax.autoscale_view()

    def _smoothed(self, exp_id: int, term: str, values: np.ndarray, weight: float) -> np.ndarray:
        key = (exp_id, term)
        cached = self._smooth_cache.get(key)
        if cached is None or cached[:2] != (values.size, weight) or not np.array_equal(
                cached[3][-1:], values[-1:]):
            cached = self._smooth_cache[key] = (values.size, weight, ema_smooth(values, weight),
                                                values[-1:].copy())
        return cached[2]

    def _add_term(self, term: str) -> None:
        if term in self.term_actions:
            return
        action = QAction(term, self.terms_menu, checkable=True)
        action.setChecked(term in DEFAULT_TERMS)
        action.toggled.connect(self._on_option_changed)
        self.terms_menu.addAction(action)
        self.term_actions[term] = action

    def _on_option_changed(self, *_):
        self._refresh_plot()
        self.canvas.draw_idle()

    # -- summary ----------------------------------------------------------------
    def _fill_summary(self) -> None:
        table = self.summary_table
        table.setRowCount(len(self.summary))
        bests = [r["best_val_loss"] for r in self.summary if r.get("best_val_loss") is not None]
        lowest = min(bests) if len(bests) > 1 else None
        for row, run in enumerate(self.summary):
            cells = (run["name"], run["status"] or "", _steps(run), format_clock(run["duration"]),
                     _number(run.get("final_loss")), _best(run, "loss"),
                     _number(run.get("final_val_loss")), _best(run, "val_loss"))
            for col, text in enumerate(cells):
                item = table.item(row, col)
                if item is None:
                    item = QTableWidgetItem()
                    table.setItem(row, col, item)
                item.setText(text)
            table.item(row, 0).setForeground(QBrush(QColor(self.colors[run["id"]])))
            table.item(row, 0).setData(Qt.ItemDataRole.UserRole, run["id"])
            font = table.item(row, 7).font()
            font.setBold(lowest is not None and run.get("best_val_loss") == lowest)
            table.item(row, 7).setFont(font)
        live = any(run["completed_at"] is None and run["duration"] is not None for run in self.summary)
        if live and not self._duration_timer.isActive():
            self._duration_timer.start()
        elif not live:
            self._duration_timer.stop()

    def _tick_durations(self) -> None:
        for row, run in enumerate(self.summary):
            if run["completed_at"] is None:
                run["duration"] = run_duration(run)
                item = self.summary_table.item(row, 3)
                if item is not None:
                    item.setText(format_clock(run["duration"]))

    # -- settings diff ----------------------------------------------------------
    def _fill_diff(self) -> None:
        table = self.diff_table
        table.clear()
        table.setColumnCount(1 + len(self.experiment_ids))
        table.setHorizontalHeaderLabels(["Setting"] + [self.names[i] for i in self.experiment_ids])
        table.setRowCount(len(self.diff_rows))
        for row, (key, values, differs) in enumerate(self.diff_rows):
            for col, text in enumerate([key] + values):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if differs:
                    item.setBackground(DIFF_BRUSH)
                    font = QFont(item.font())
                    font.setBold(True)
                    item.setFont(font)
                table.setItem(row, col, item)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        table.resizeColumnsToContents()
        for col in range(table.columnCount()):
            table.setColumnWidth(col, min(table.columnWidth(col), 360))
        self._apply_diff_filter()

    def _apply_diff_filter(self, *_):
        only = self.only_differences.isChecked()
        for row, (_key, _values, differs) in enumerate(self.diff_rows):
            self.diff_table.setRowHidden(row, only and not differs)

    def closeEvent(self, event) -> None:
        self._timer.stop()
        self._duration_timer.stop()
        super().closeEvent(event)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
