# Frozen copy of rave_gui/ui/widgets/metrics_plot.py at commit 9160fe8 (before issue 14), for side-by-side benchmarks only.
"""Live training curves: loss terms on top, learning rate, KL beta or fidelity below.

``update_metrics`` only appends to an in-memory history and arms a
single-shot timer; the figure is redrawn at most once per ``REDRAW_MS``.
Long histories are reduced with ``decimate_minmax`` (peaks survive) before
``Line2D.set_data``, so a redraw costs about the same for 1e3 or 1e6 points.

RAVE trains in two phases: from ``PHASE_1_DURATION`` on (``set_phase_1``) the
adversarial terms appear and the losses jump; a dotted marker on both axes says
so. Legends sit outside the axes (right), so they never cover the newest points.
"""
from __future__ import annotations

import numbers

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg, NavigationToolbar2QT
from matplotlib.figure import Figure
from matplotlib.ticker import AutoLocator, MaxNLocator
from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtGui import QAction
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QHBoxLayout, QLabel, QMenu, QSlider,
                             QToolButton, QVBoxLayout, QWidget)

from rave_gui.ui.widgets.plot_ticks import use_log_ticks

REDRAW_MS = 250
MAX_DISPLAY_POINTS = 4000  # 2000 min/max buckets
MAX_MARKERS = 300  # beyond that, markers go on every k-th point only
DEFAULT_TERMS = ("loss", "val_loss")
LOWER_CHOICES = (("Learning rate", "lr"), ("KL beta (beta_factor)", "beta_factor"),
                 ("Fidelity (latent dimensions)", "fidelity"))
LOWER_TITLES = {"lr": "Learning Rate", "beta_factor": "KL beta (beta_factor)",
                "fidelity": "Fidelity: latent dimensions needed"}
NO_DATA = {"lr": "No learning-rate data logged for this run",
           "beta_factor": "No KL beta (beta_factor) data logged for this run",
           "fidelity": "No fidelity logged for this run\n"
                       "(RAVE logs it at validations before phase 2)"}
NOT_LOSS_TERMS = {"lr", "beta_factor", "epoch", "step"}  # never offered on the loss axis
FIDELITY_PREFIX = "fidelity_"  # fidelity_0.8 ... fidelity_0.99: on the lower plot only
FIDELITY_COLORS = ("tab:blue", "tab:green", "tab:orange", "tab:red")
# RAVE logs these from PHASE_1_DURATION on; they get their own section of the Terms menu
ADVERSARIAL_TERMS = {
    "feature_matching": "Generator: feature matching against the discriminator (phase 2)",
    "adversarial": "Generator: adversarial loss (phase 2)",
    "loss_dis": "Discriminator loss (phase 2)",
    "pred_real": "Discriminator score of real audio (phase 2)",
    "pred_fake": "Discriminator score of generated audio (phase 2)"}
DEFAULT_LOG_EVERY = 50  # Lightning's log_every_n_steps unless the run says otherwise
EMPTY_LOSS = "No points yet: RAVE logs the losses every {n} steps"
NO_TERM = "No term selected: choose one under Terms"
PHASE_2_LABEL = "phase 2: adversarial training"
PHASE_COLOR = "0.35"
PHASE_LABEL_MIN_PX = 230  # a shorter label ("phase 2") on a loss axes lower than this
PHASE_LOOKAHEAD = 0.8  # the x axis extends to the marker once the data reaches 80 % of it
MIN_LOG_SPAN = 1.5  # the smallest ratio top/bottom of the learning-rate axis
LEGEND_PAD_PX = 12  # the gap between the axes and the legend, and a little more
TERM_STYLES = {"loss": dict(color="tab:blue", linestyle="-"),
               "val_loss": dict(color="tab:orange", linestyle="--", marker="o", markersize=3)}
OTHER_COLORS = ("tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray", "tab:olive",
                "tab:cyan", "black")


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
    lo = hi = values
    finite = np.isfinite(values)
    if not finite.all():  # NaN and inf never win a bucket unless the whole bucket is
        lo, hi = np.where(finite, values, np.inf), np.where(finite, values, -np.inf)
    imin, imax = _bucket_arg(lo, size, np.argmin), _bucket_arg(hi, size, np.argmax)
    idx = np.stack([np.minimum(imin, imax), np.maximum(imin, imax)], axis=1).ravel()
    idx = np.concatenate(([0], idx, [n - 1]))
    idx = idx[np.concatenate(([True], np.diff(idx) != 0))]
    return steps[idx], values[idx]


def _bucket_arg(values: np.ndarray, size: int, arg) -> np.ndarray:
    """Index of ``arg`` (argmin/argmax) in every run of ``size`` points."""
    rows = values.size // size
    idx = arg(values[:rows * size].reshape(rows, size), axis=1) + np.arange(rows) * size
    if values.size > rows * size:
        idx = np.append(idx, rows * size + arg(values[rows * size:]))
    return idx


def ema_smooth(values, weight: float) -> np.ndarray:
    """TensorBoard's scalar smoothing: a debiased EMA (``last / (1 - w**n)``,
    ``n`` counting finite points). Non-finite points pass through unchanged and
    are skipped; a constant series is returned as is."""
    values = np.asarray(values, dtype=float)
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    if weight == 0 or values.size == 0 or np.all(values == values[0]):
        return values.copy()
    finite = np.isfinite(values)
    f = values[finite]
    debias = np.ones(f.size)  # 1 - w**k, which is 1.0 once w**k underflows below 1e-17
    k = np.arange(1, min(f.size, int(17 / -np.log10(weight)) + 2) + 1)
    debias[:k.size] = 1 - weight ** k
    out = values.copy()
    out[finite] = (1 - weight) * _linear_recurrence(f, weight) / debias
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


def _mark_if_sparse(line, below: int = 20) -> None:
    """Dots on a line with few points, so a single point is visible at all."""
    line.set_marker("o" if len(line.get_xdata()) < below else "None")
    line.set_markersize(3)


class _Series:
    """Growing (step, value) arrays with amortized O(1) append."""

    def __init__(self, steps=(), values=()):
        self.steps = np.asarray(steps, dtype=float).copy()
        self.values = np.asarray(values, dtype=float).copy()
        self.n = self.steps.size
        self.ordered = bool(np.all(np.diff(self.steps) >= 0))

    def append(self, step: float, value: float) -> None:
        if self.n == self.steps.size:
            cap = max(64, 2 * self.n)
            self.steps = np.resize(self.steps, cap)
            self.values = np.resize(self.values, cap)
        if self.n and step < self.steps[self.n - 1]:
            self.ordered = False
        self.steps[self.n], self.values[self.n] = step, value
        self.n += 1

    def data(self):
        return self.steps[:self.n], self.values[:self.n]


class _Toolbar(NavigationToolbar2QT):
    """'Home' also turns autoscaling back on, so live data keeps the view moving."""

    def __init__(self, canvas, parent, on_home):
        self._on_home = on_home
        super().__init__(canvas, parent)

    def home(self, *args):
        super().home(*args)
        for ax in self.canvas.figure.axes:
            ax.autoscale(True)
        self._on_home()


class MetricsPlot(QWidget):
    """Loss terms (top) and learning rate or KL beta (bottom) against the step.

    Feed it with ``update_metrics`` (live, throttled), ``set_history`` (a past
    run) or ``clear``; ``get_history()``/``history`` return the data and
    ``redraw_now`` draws synchronously."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._series: dict[str, _Series] = {}
        self._lines: dict[str, tuple] = {}  # term -> (raw Line2D, smoothed Line2D)
        self._smooth_cache: dict[str, tuple] = {}
        self._refreshing = self._stale = False
        self.phase_1: int | None = None
        self.log_every = DEFAULT_LOG_EVERY
        self._legend_px = {}  # axes -> width of its legend in (physical) pixels
        self.figure = Figure(figsize=(6, 5))  # fixed pixel margins: constrained layout
        self.canvas = FigureCanvasQTAgg(self.figure)  # would double the cost of a draw
        self.canvas.mpl_connect("resize_event", self._set_margins)
        self.ax_loss, self.ax_lower = self.figure.subplots(2, 1, sharex=True,
                                                           height_ratios=(2, 1))
        self.ax_loss.set_title("Training Loss")
        self.ax_loss.set_ylabel("loss")
        self.ax_lower.set_xlabel("step")
        self.lower_lines = {"lr": self.ax_lower.plot([], [], color="tab:green", label="lr")[0],
                            "beta_factor": self.ax_lower.plot([], [], color="tab:purple",
                                                              label="beta_factor")[0]}
        self.lower_message = self.ax_lower.text(0.5, 0.5, "", transform=self.ax_lower.transAxes,
                                                ha="center", va="center", color="0.4")
        self.lower_key = None  # the key the lower plot shows, None when it shows nothing
        self.fidelity_lines: dict[str, object] = {}  # fidelity_* key -> Line2D, on ax_lower
        self._int_locator = MaxNLocator(nbins="auto", integer=True)
        self.loss_message = self.ax_loss.text(0.5, 0.5, "", transform=self.ax_loss.transAxes,
                                              ha="center", va="center", color="0.4", wrap=True)
        self.phase_lines = [ax.axvline(0, color=PHASE_COLOR, linestyle=":", linewidth=1.3,
                                       label="_phase 2", visible=False)
                            for ax in (self.ax_loss, self.ax_lower)]
        self.phase_label = self.ax_loss.text(0, 0.97, PHASE_2_LABEL, rotation=90, ha="right",
                                             va="top", fontsize="small", color=PHASE_COLOR,
                                             transform=self.ax_loss.get_xaxis_transform(),
                                             bbox=dict(facecolor="white", alpha=0.75,
                                                       edgecolor="none", pad=1.5),
                                             visible=False)
        self.ax_lower.set_yscale("log")
        self.ax_loss.callbacks.connect("xlim_changed", self._on_xlim_changed)
        self.toolbar = _Toolbar(self.canvas, self, self.schedule_redraw)

        self.terms_button = QToolButton(text="Terms")
        self.terms_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.terms_menu = QMenu(self.terms_button)
        self.terms_menu.setToolTipsVisible(True)
        self.terms_button.setMenu(self.terms_menu)
        self.term_actions: dict[str, QAction] = {}
        self._phase_2_section: QAction | None = None  # "Phase 2 (adversarial)" in the menu
        self.log_check = QCheckBox("Log scale")
        self.log_check.setToolTip("Logarithmic y axis for the loss plot")
        self.log_check.toggled.connect(self._on_option_changed)
        self.smooth_slider = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=99)
        self.smooth_slider.setToolTip("Exponential moving average, as in TensorBoard")
        self.smooth_label = QLabel()
        self.smooth_slider.valueChanged.connect(self._on_option_changed)
        self.lower_combo = QComboBox()
        for text, key in LOWER_CHOICES:
            self.lower_combo.addItem(text, key)
        self.lower_combo.setToolTip("Fidelity: how many latent dimensions RAVE needs for 80, 90, "
                                    "95 and 99 % of the signal (validations before phase 2)")
        self.lower_combo.currentIndexChanged.connect(self._on_option_changed)

        controls = QHBoxLayout()
        for w in (self.terms_button, self.log_check, QLabel("Smoothing:"), self.smooth_slider,
                  self.smooth_label, QLabel("Lower plot:"), self.lower_combo):
            controls.addWidget(w)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.canvas, 1)
        layout.addLayout(controls)

        self._timer = QTimer(self, singleShot=True, interval=REDRAW_MS)
        self._timer.timeout.connect(self._redraw)
        for term in DEFAULT_TERMS:
            self._add_term(term)
        self._set_margins()
        self._on_option_changed()

    # ---- data -------------------------------------------------------------
    def update_metrics(self, metrics) -> None:
        """Append one point (``{"step": int, key: float, ...}``) or a list of them.
        Nothing is drawn here: a redraw is scheduled at most every REDRAW_MS."""
        for point in [metrics] if isinstance(metrics, dict) else metrics:
            step = point.get("step")
            if not _is_number(step):
                continue
            for key, value in point.items():
                if (not isinstance(key, str) or key == "step" or key.startswith("_")
                        or not _is_number(value)):
                    continue
                series = self._series.get(key)
                if series is None:
                    series = self._series[key] = _Series()
                    self._add_term(key)
                series.append(float(step), float(value))
        self.schedule_redraw()

    def load_history(self, manager, experiment_id: int) -> None:
        """What the Training page did before ``load_history`` existed (its call, kept so
        today's page can host the old plot)."""
        self.set_history(manager.get_metric_history(experiment_id))

    def set_history(self, history: dict) -> None:
        """Replace all data: ``{key: [(step, value), ...]}`` (or ``{key: (steps,
        values)}`` as returned by ``get_history``), then redraw at once."""
        self._series.clear()
        self._smooth_cache.clear()
        for key, points in history.items():
            if key.startswith("_"):
                continue
            if isinstance(points, tuple) and len(points) == 2 and isinstance(points[0], np.ndarray):
                steps, values = points
            else:
                pairs = np.asarray(list(points), dtype=float).reshape(-1, 2)
                steps, values = pairs[:, 0], pairs[:, 1]
            order = np.argsort(steps, kind="stable")
            self._series[key] = _Series(np.asarray(steps)[order], np.asarray(values)[order])
            self._add_term(key)
        self._reset_view()
        self.redraw_now()

    def clear(self) -> None:
        self._series.clear()
        self._smooth_cache.clear()
        self._reset_view()
        self.redraw_now()

    def get_history(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {key: tuple(a.copy() for a in s.data()) for key, s in self._series.items()}

    history = property(get_history)

    def set_phase_1(self, step: int | None) -> None:
        """Mark where phase 2 (adversarial training) starts: ``PHASE_1_DURATION``
        of the run (``gin_config.phase_1_duration_of_run``), ``None`` for no marker.
        The marker shows whenever the x axis reaches it; the axis extends to it
        once the data reaches ``PHASE_LOOKAHEAD`` of it, never earlier."""
        step = int(step) if _is_number(step) and step >= 0 else None
        if step != self.phase_1:
            self.phase_1 = step
            self.schedule_redraw()

    def set_log_every(self, n: int | None) -> None:
        """The run's logging interval (``log_every`` of its config), quoted by the
        empty plot's message."""
        n = int(n) if _is_number(n) and n >= 1 else DEFAULT_LOG_EVERY
        if n != self.log_every:
            self.log_every = n
            self.schedule_redraw()

    # ---- drawing ----------------------------------------------------------
    def schedule_redraw(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def redraw_now(self) -> None:
        """Update every artist and draw synchronously."""
        self._timer.stop()
        self._refresh()
        self.canvas.draw()

    def _redraw(self) -> None:
        if not self.isVisible():  # e.g. on a hidden tab: draw once shown again
            self._stale = True
            return
        self._refresh()
        self.canvas.draw_idle()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale:
            self._stale = False
            self.schedule_redraw()

    def smoothing(self) -> float:
        return self.smooth_slider.value() / 100

    def _refresh(self) -> None:
        self._refreshing = True
        try:
            shown = self._refresh_loss()
            self._refresh_lower()
            newest = self._newest_step()
            near = self.phase_1 is not None and newest >= PHASE_LOOKAHEAD * self.phase_1
            for line in self.phase_lines:  # in the limits only when the data is near it
                line.set_visible(near)
                if near:
                    line.set_xdata([self.phase_1, self.phase_1])
            for ax in (self.ax_loss, self.ax_lower):
                if ax.get_autoscalex_on() or ax.get_autoscaley_on():
                    ax.relim(visible_only=True)
                    ax.autoscale_view()
            self._widen_flat_log_range()
            self._place_phase_marker(newest > float("-inf"))
            self._say_why_empty(shown, newest > float("-inf"))
        finally:
            self._refreshing = False

    def _newest_step(self) -> float:
        newest = float("-inf")
        for series in self._series.values():
            if series.n:
                steps = series.data()[0]
                newest = max(newest, steps[-1] if series.ordered else steps.max())
        return newest

    def _widen_flat_log_range(self) -> None:
        """A learning rate that barely moves (one point; the first steps of RAVE's
        1e-3 -> 1e-4 decay over a million steps) gets a y range of at least a
        factor MIN_LOG_SPAN around it: a flat line with short labels (9e-4, 1e-3,
        1.1e-3) rather than two decades, or ticks told apart at the 5th digit."""
        if self.lower_key != "lr" or not self.ax_lower.get_autoscaley_on():
            return
        y = np.asarray(self.lower_lines["lr"].get_ydata(), dtype=float)
        y = y[np.isfinite(y) & (y > 0)]
        if y.size and y.max() / y.min() < MIN_LOG_SPAN:
            centre, half = np.sqrt(y.max() * y.min()), np.sqrt(MIN_LOG_SPAN)
            self.ax_lower.set_ylim(centre / half, centre * half, auto=None)

    def _place_phase_marker(self, has_data: bool) -> None:
        p = self.phase_1
        x0, x1 = sorted(self.ax_loss.get_xlim())
        inside = has_data and p is not None and x0 <= p <= x1
        for line in self.phase_lines:
            line.set_visible(inside)
            if inside:
                line.set_xdata([p, p])
        self.phase_label.set_visible(inside)
        if inside:  # the label beside the line, on the side with more room
            self.phase_label.set_x(p)
            self.phase_label.set_horizontalalignment("right" if p - x0 > 0.25 * (x1 - x0)
                                                     else "left")

    def _say_why_empty(self, shown: int, has_data: bool) -> None:
        """A sentence instead of bare axes when the loss plot has nothing to draw."""
        has_terms = any(s.n for k, s in self._series.items() if k in self._lines)
        text = "" if shown else (NO_TERM if has_terms else EMPTY_LOSS.format(n=self.log_every))
        if self.loss_message.get_text() != text:
            self.loss_message.set_text(text)
        self.loss_message.set_visible(bool(text))
        self.ax_loss.yaxis.set_visible(bool(shown))
        for ax in (self.ax_loss, self.ax_lower):  # the shared step axis: no ticks for nothing
            ax.xaxis.set_visible(has_data)

    def _visible(self, series: _Series):
        """The slice of ``series`` in the zoomed x range (all of it when autoscaling)."""
        steps = series.data()[0]
        if series.ordered and not self.ax_loss.get_autoscalex_on() and steps.size:
            x0, x1 = sorted(self.ax_loss.get_xlim())
            i0 = max(0, int(np.searchsorted(steps, x0, "left")) - 1)
            i1 = int(np.searchsorted(steps, x1, "right")) + 1
            return slice(i0, i1)
        return slice(None)

    def _refresh_loss(self) -> int:
        """Update the loss lines; return how many are shown."""
        weight = self.smoothing()
        scale = "log" if self.log_check.isChecked() else "linear"
        if self.ax_loss.get_yscale() != scale:
            self.ax_loss.set_yscale(scale)
        for term, (raw, smooth) in self._lines.items():
            series = self._series.get(term)
            has_data = series is not None and series.n > 0
            self.term_actions[term].setEnabled(has_data)  # terms of a previous run stay listed
            shown = self.term_actions[term].isChecked() and has_data
            raw.set_visible(shown)
            smooth.set_visible(shown and weight > 0)
            raw.set_alpha(0.25 if weight > 0 else 1.0)
            if not shown:
                continue
            steps, values = series.data()
            window = self._visible(series)
            raw.set_data(*decimate_minmax(steps[window], values[window], MAX_DISPLAY_POINTS))
            raw.set_markevery(max(1, len(raw.get_xdata()) // MAX_MARKERS))  # a marker blob
            if term != "val_loss":  # RAVE logs every 50 steps: a short run has few points
                _mark_if_sparse(raw)
            if weight > 0:
                smoothed = self._smoothed(term, values, weight)
                smooth.set_data(*decimate_minmax(steps[window], smoothed[window],
                                                 MAX_DISPLAY_POINTS))
        handles = [raw for raw, _ in self._lines.values() if raw.get_visible()]
        self._set_legend(self.ax_loss, handles)
        return len(handles)

    def _set_legend(self, ax, handles) -> None:
        """The legend of ``ax`` outside it, at its right: it never covers a point.
        Rebuilt only when its entries change; the right margin follows its width."""
        legend = ax.get_legend()
        if [h.get_label() for h in handles] == ([t.get_text() for t in legend.get_texts()]
                                                if legend else []):
            return
        if handles:
            legend = ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                               borderaxespad=0.4, fontsize="small")
            width = legend.get_window_extent(self.canvas.get_renderer()).width
            self._legend_px[ax] = width / max(1.0, self.canvas.device_pixel_ratio)
        else:
            if legend:
                legend.remove()
            self._legend_px.pop(ax, None)
        self._set_margins()

    def _smoothed(self, term: str, values: np.ndarray, weight: float) -> np.ndarray:
        cached = self._smooth_cache.get(term)
        if cached is None or cached[:2] != (values.size, weight):
            cached = self._smooth_cache[term] = (values.size, weight, ema_smooth(values, weight))
        return cached[2]

    def _refresh_lower(self) -> None:
        chosen = key = self.lower_combo.currentData()
        has = {k: k in self._series and self._series[k].n > 0 for k in self.lower_lines}
        fidelity = self._fidelity_keys()
        has["fidelity"] = bool(fidelity)
        if chosen == "lr" and not has["lr"] and has["beta_factor"]:
            key = "beta_factor"  # RAVE logs no lr unless a LearningRateMonitor is added
        self.lower_key = key if has[key] else None
        self.ax_lower.set_title(LOWER_TITLES[key] + ("" if key == chosen else
                                                     ": no learning rate logged"))
        self.lower_message.set_text(NO_DATA[key])
        self.lower_message.set_visible(self.lower_key is None)
        self.ax_lower.yaxis.set_visible(self.lower_key is not None)  # no ticks for nothing
        scale = "log" if key == "lr" else "linear"
        if self.ax_lower.get_yscale() != scale:
            self.ax_lower.set_yscale(scale)
        if scale == "log":
            use_log_ticks(self.ax_lower.yaxis)  # readable labels under one decade
        yaxis = self.ax_lower.yaxis
        if key == "fidelity" and yaxis.get_major_locator() is not self._int_locator:
            yaxis.set_major_locator(self._int_locator)  # a number of latent dimensions
        elif key == "beta_factor" and yaxis.get_major_locator() is self._int_locator:
            yaxis.set_major_locator(AutoLocator())
        for k, line in self.lower_lines.items():
            self._show_lower_line(line, k, k == self.lower_key)
        for k in fidelity:
            if k not in self.fidelity_lines:
                color = FIDELITY_COLORS[len(self.fidelity_lines) % len(FIDELITY_COLORS)]
                share = _fidelity_order(k)[1]  # fidelity_0.95 -> "95 %"
                label = f"{share * 100:g} %" if 0 < share <= 1 else k
                self.fidelity_lines[k] = self.ax_lower.plot([], [], color=color, marker="o",
                                                            markersize=3, label=label)[0]
        for k, line in self.fidelity_lines.items():
            self._show_lower_line(line, k, self.lower_key == "fidelity" and k in fidelity)
        self._set_legend(self.ax_lower, [self.fidelity_lines[k] for k in fidelity]
                         if self.lower_key == "fidelity" else [])

    def _show_lower_line(self, line, key: str, shown: bool) -> None:
        line.set_visible(shown)
        if shown:
            steps, values = self._series[key].data()
            window = self._visible(self._series[key])
            line.set_data(*decimate_minmax(steps[window], values[window], MAX_DISPLAY_POINTS))
            _mark_if_sparse(line)

    def _fidelity_keys(self) -> list[str]:
        """The fidelity_* keys with data, by fidelity (0.8, 0.9, 0.95, 0.99)."""
        keys = [k for k, s in self._series.items() if k.startswith(FIDELITY_PREFIX) and s.n]
        return sorted(keys, key=_fidelity_order)

    # ---- controls ---------------------------------------------------------
    def _add_term(self, term: str) -> None:
        if (term in self.term_actions or term in NOT_LOSS_TERMS or term.startswith("lr-")
                or term.startswith(FIDELITY_PREFIX)):
            return
        action = QAction(term, self.terms_menu, checkable=True)
        action.setChecked(term in DEFAULT_TERMS)
        action.toggled.connect(self._on_option_changed)
        if term in ADVERSARIAL_TERMS:  # grouped under their own heading, at the end
            action.setToolTip(ADVERSARIAL_TERMS[term])
            if self._phase_2_section is None:
                self._phase_2_section = self.terms_menu.addSection("Phase 2 (adversarial)")
            self.terms_menu.addAction(action)
        elif self._phase_2_section is not None:
            self.terms_menu.insertAction(self._phase_2_section, action)
        else:
            self.terms_menu.addAction(action)
        self.term_actions[term] = action
        style = TERM_STYLES.get(term) or dict(
            color=OTHER_COLORS[(len(self._lines) - len(TERM_STYLES)) % len(OTHER_COLORS)],
            linestyle="-")
        raw = self.ax_loss.plot([], [], label=term, **style)[0]
        smooth_style = {k: v for k, v in style.items() if not k.startswith("marker")}
        smooth = self.ax_loss.plot([], [], label=f"_{term} (smoothed)", **smooth_style)[0]
        self._lines[term] = (raw, smooth)

    def _on_option_changed(self, *_):
        self.smooth_label.setText(f"{self.smoothing():.2f}")
        self._refresh()
        self.canvas.draw_idle()

    def _set_margins(self, *_):
        w, h = max(self.canvas.width(), 200), max(self.canvas.height(), 200)
        bottom, top, gap = 44 / h, 1 - 26 / h, 50  # pixels
        axes_height = max(1.0, (h * (top - bottom) - gap) / 2)
        loss_px = (h * (top - bottom) - gap) * 2 / 3  # the loss axes' height
        self.phase_label.set_text(PHASE_2_LABEL if loss_px >= PHASE_LABEL_MIN_PX else "phase 2")
        legend = max(self._legend_px.values(), default=0.0)  # legends sit right of the axes
        right = 16 + (legend + LEGEND_PAD_PX if legend else 0)
        self.figure.subplots_adjust(left=min(0.4, 80 / w), right=max(0.5, 1 - right / w),
                                    bottom=bottom, top=top, hspace=min(1.0, gap / axes_height))

    def _on_xlim_changed(self, ax) -> None:
        if not self._refreshing and not ax.get_autoscalex_on():
            self.schedule_redraw()  # zoom/pan: re-decimate for the new view

    def _reset_view(self) -> None:
        for ax in (self.ax_loss, self.ax_lower):
            ax.autoscale(True)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _fidelity_order(key: str) -> tuple:
    try:
        return (0, float(key[len(FIDELITY_PREFIX):]), key)
    except ValueError:
        return (1, 0.0, key)
