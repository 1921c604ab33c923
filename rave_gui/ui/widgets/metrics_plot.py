"""Live training curves: loss terms on top, learning rate, KL beta or fidelity below.

``update_metrics`` only appends to an in-memory history and arms a
single-shot timer; the figure is redrawn at most once per ``REDRAW_MS``.
Long histories are reduced to the min and max of each bucket of points (peaks
survive), and smoothed, incrementally (``plot_series``): a redraw costs what is
new, about the same for 1e3 or 1e6 points.

The data lines are drawn over a cached picture of the axes (``BlitCanvas``): a
live redraw draws the lines only, unless the axes' limits must change. While
data streams in, the limits grow with headroom (``HEADROOM`` of the data's span
ahead), so that happens rarely; and then the picture behind the lines is drawn
in slices, so the window never freezes for a whole draw.

A stored run is shown with ``load_history``: from the history cache at once;
a long run recorded before the cache existed shows an overview at once (a few
thousand points per key, read by index seeks) and its full history when a
background thread has read and cached it, the window responsive meanwhile.

RAVE trains in two phases: from ``PHASE_1_DURATION`` on (``set_phase_1``) the
adversarial terms appear and the losses jump; a dotted marker on both axes says
so. Legends sit outside the axes (right), so they never cover the newest points.
"""
from __future__ import annotations

import numbers

import numpy as np
from matplotlib.backends.backend_qtagg import NavigationToolbar2QT
from matplotlib.figure import Figure
from matplotlib.ticker import AutoLocator, MaxNLocator
from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QHBoxLayout, QLabel, QMenu, QSlider,
                             QToolButton, QVBoxLayout, QWidget)

from rave_gui.ui.widgets.blit_canvas import BlitCanvas
from rave_gui.ui.widgets.plot_series import Series as _Series
from rave_gui.ui.widgets.plot_series import decimate_minmax, ema_smooth  # noqa: F401 (public API)
from rave_gui.ui.widgets.plot_ticks import use_log_ticks

REDRAW_MS = 250
SYNC_TABLE_ROWS = 100_000  # load_history: more points outside the history cache are read in the background
LOADING = "Loading the whole history: an overview is shown meanwhile…"
LOAD_FAILED = "Only an overview is shown: the whole history could not be read ({error})"
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
HEADROOM = 0.25  # live data: a limit that must grow goes this share of the data's span further
LOOSE = 2.0  # live data: limits wider than this many times the data's span are recomputed
TERM_STYLES = {"loss": dict(color="tab:blue", linestyle="-"),
               "val_loss": dict(color="tab:orange", linestyle="--", marker="o", markersize=3)}
OTHER_COLORS = ("tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray", "tab:olive",
                "tab:cyan", "black")


def _mark_if_sparse(line, below: int = 20) -> None:
    """Dots on a line with few points, so a single point is visible at all."""
    line.set_marker("o" if len(line.get_xdata()) < below else "None")
    line.set_markersize(3)


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
    ``redraw_now`` draws synchronously. ``load_history`` shows a stored run
    without blocking on a long uncached history (``history_loaded`` then)."""

    history_loaded = pyqtSignal(int)  # an experiment id: its whole history replaced the overview
    _loaded = pyqtSignal(int, int, object, object)  # from the loading thread: token, id, history, error

    def __init__(self, parent=None):
        super().__init__(parent)
        self._load = None  # the BackgroundLoad in progress, if any
        self._load_token = 0  # bumped whenever the data is replaced: a late load is then dropped
        self._series: dict[str, _Series] = {}
        self._lines: dict[str, tuple] = {}  # term -> (raw Line2D, smoothed Line2D)
        self._refreshing = self._stale = False
        self.phase_1: int | None = None
        self.log_every = DEFAULT_LOG_EVERY
        self._legend_px = {}  # axes -> width of its legend in (physical) pixels
        self.figure = Figure(figsize=(6, 5))  # fixed pixel margins: constrained layout
        self.canvas = BlitCanvas(self.figure, self._data_lines)  # would double the cost of a draw
        self.canvas.mpl_connect("resize_event", self._set_margins)
        self.ax_loss, self.ax_lower = self.figure.subplots(2, 1, sharex=True,
                                                           height_ratios=(2, 1))
        # titles at a fixed height (nothing sits above the axes): matplotlib then skips
        # working out where they would clear the ticks, a fifth of every draw
        self.ax_loss.set_title("Training Loss", y=1.0)
        self.ax_lower.set_title(LOWER_TITLES["lr"], y=1.0)
        self.ax_loss.set_ylabel("loss")
        self.ax_lower.set_xlabel("step")
        for axis in (self.ax_loss.xaxis, self.ax_lower.yaxis):  # labels that stay empty:
            axis.set_label_coords(0.5, 0.5)                      # no placing them at each draw
        self.lower_lines = {"lr": self.ax_lower.plot([], [], color="tab:green", label="lr",
                                                     animated=True)[0],
                            "beta_factor": self.ax_lower.plot([], [], color="tab:purple",
                                                              label="beta_factor", animated=True)[0]}
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
        self.loading_label = QLabel()
        self.loading_label.setStyleSheet("color: gray")
        self.loading_label.setVisible(False)
        for w in (self.terms_button, self.log_check, QLabel("Smoothing:"), self.smooth_slider,
                  self.smooth_label, QLabel("Lower plot:"), self.lower_combo, self.loading_label):
            controls.addWidget(w)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.canvas, 1)
        layout.addLayout(controls)

        self._timer = QTimer(self, singleShot=True, interval=REDRAW_MS)
        self._timer.timeout.connect(self._redraw)
        self._loaded.connect(self._on_loaded)
        for term in DEFAULT_TERMS:
            self._add_term(term)
        self._set_margins()
        self._on_option_changed()

    # ---- data -------------------------------------------------------------
    def update_metrics(self, metrics) -> None:
        """Append one point (``{"step": int, key: float, ...}``) or a list of them.
        Nothing is drawn here: a redraw is scheduled at most every REDRAW_MS."""
        series_of = self._series
        for point in [metrics] if isinstance(metrics, dict) else metrics:
            step = point.get("step")
            if type(step) not in _PLAIN_NUMBERS and not _is_number(step):
                continue
            step = float(step)
            for key, value in point.items():
                series = series_of.get(key)
                if series is None:  # a key not seen yet (or not a metric): the full checks
                    if (not isinstance(key, str) or key == "step" or key.startswith("_")
                            or not _is_number(value)):
                        continue
                    series = series_of[key] = _Series(max_points=MAX_DISPLAY_POINTS)
                    self._add_term(key)
                elif type(value) not in _PLAIN_NUMBERS and not _is_number(value):
                    continue
                series.append(step, float(value))
        if not self._timer.isActive():
            self._timer.start()

    def set_history(self, history: dict) -> None:
        """Replace all data: ``{key: [(step, value), ...]}`` (or ``{key: (steps,
        values)}`` as returned by ``get_history``, or objects with ``steps`` and
        ``values`` arrays, as ``TrainingManager.get_metric_history`` returns),
        then redraw at once."""
        self._stop_loading()
        self._replace_series(history)
        self._reset_view()
        self.redraw_now()

    def load_history(self, manager, experiment_id: int) -> None:
        """Show a stored run: ``set_history(manager.get_metric_history(experiment_id))``,
        at once when its history is cached (every run the app recorded). A long run
        recorded before the cache existed shows an overview at once
        (``history_cache.read_overview``) and, when a background thread has read it
        (caching it: the next open is instant), its whole history, in the view the
        user chose meanwhile; ``history_loaded`` is then emitted. Points that arrive
        meanwhile (``update_metrics``) are kept."""
        from rave_gui.backend import history_cache
        db = manager.db
        history = history_cache.read_history(db, experiment_id, max_table_rows=SYNC_TABLE_ROWS)
        if history is not None:
            self.set_history(history)
            return
        self.set_history(history_cache.read_overview(db, experiment_id))
        token = self._load_token
        self.loading_label.setText(LOADING)
        self.loading_label.setVisible(True)

        def done(history, error):  # on the loading thread: queued to this one
            try:
                self._loaded.emit(token, experiment_id, history, error)
            except RuntimeError:  # the plot was deleted meanwhile
                pass

        self._load = history_cache.BackgroundLoad(db, experiment_id, done)

    @property
    def loading(self) -> bool:
        """An overview is shown; the whole history is being read."""
        return self._load is not None

    def _stop_loading(self) -> None:
        self._load_token += 1
        if self._load is not None:
            self._load.cancel()
            self._load = None
        self.loading_label.setVisible(False)

    def _on_loaded(self, token: int, experiment_id: int, history, error) -> None:
        if token != self._load_token:
            return  # other data was shown meanwhile
        self._load = None
        if error is not None:
            self.loading_label.setText(LOAD_FAILED.format(error=error))
            return
        self.loading_label.setVisible(False)
        since = {key: series.data() for key, series in self._series.items()}  # the overview, and live points
        self._replace_series(history)
        for key, (steps, values) in since.items():  # points newer than what was read: live ones
            series = self._series.get(key)
            later = steps > (series.data()[0][-1] if series is not None and series.n else -np.inf)
            if not later.any():
                continue
            if series is None:
                self._series[key] = _Series(steps[later], values[later], MAX_DISPLAY_POINTS)
                self._add_term(key)
            else:
                for step, value in zip(steps[later].tolist(), values[later].tolist()):
                    series.append(step, value)
        self._refresh()  # the limits fit the data, where the user did not zoom or pan
        if self.isVisible() and not self.canvas.rendering:
            self.canvas.refresh()  # the axes in slices: no freeze for a whole draw
        else:
            self.schedule_redraw()
        self.history_loaded.emit(experiment_id)

    def _replace_series(self, history: dict) -> None:
        self._series.clear()
        for key, points in history.items():
            if key.startswith("_"):
                continue
            steps, values = _as_arrays(points)
            if not np.all(steps[1:] >= steps[:-1]):
                order = np.argsort(steps, kind="stable")
                steps, values = steps[order], values[order]
            self._series[key] = _Series(steps, values, MAX_DISPLAY_POINTS)
            self._add_term(key)

    def clear(self) -> None:
        self._stop_loading()
        self._series.clear()
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
        """Update every artist and draw synchronously (the whole figure)."""
        self._timer.stop()
        self._refresh()
        self.canvas.draw()

    def _redraw(self) -> None:
        """The throttled live redraw: the lines over the cached axes, or the axes
        again (in slices) when their limits or labels changed."""
        if not self.isVisible():  # e.g. on a hidden tab: draw once shown again
            self._stale = True
            return
        if self.canvas.rendering:  # the axes are being drawn: come back after
            self.schedule_redraw()
            return
        self._refresh(live=True)
        self.canvas.refresh()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale:
            self._stale = False
            self.schedule_redraw()

    def smoothing(self) -> float:
        return self.smooth_slider.value() / 100

    def _data_lines(self) -> list:
        """The animated artists, drawn over the cached axes (BlitCanvas)."""
        lines = [line for pair in self._lines.values() for line in pair]
        return lines + list(self.lower_lines.values()) + list(self.fidelity_lines.values())

    def _refresh(self, live: bool = False) -> None:
        """Bring every artist up to date. ``live``: limits that still hold the data
        are kept, and those that must grow get headroom (a live redraw); else they
        fit the data, as matplotlib's autoscaling does."""
        self._refreshing = True
        try:
            shown = self._refresh_loss()
            self._refresh_lower()
            newest = self._newest_step()
            near = self.phase_1 is not None and newest >= PHASE_LOOKAHEAD * self.phase_1
            self._autoscale(live, self.phase_1 if near else None)
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

    # ---- limits -------------------------------------------------------------
    def _autoscale(self, live: bool, phase: float | None) -> None:
        """What ``relim`` + ``autoscale_view`` did, on the drawn (decimated, so
        extremes kept) data, and with hysteresis when ``live``. The x axis is shared;
        ``phase`` (the phase-2 step, once the data is near it) is kept in view."""
        if self.ax_loss.get_autoscalex_on():
            xs = [line.get_xdata() for line in self._data_lines()
                  if line.get_visible() and len(line.get_xdata())]
            if phase is not None:
                xs.append(np.array([float(phase)]))
            self._fit(self.ax_loss, "x", _finite_range(xs, log=False), live)
        for ax in (self.ax_loss, self.ax_lower):
            if not ax.get_autoscaley_on():
                continue
            log = ax.get_yscale() == "log"
            ys = [line.get_ydata() for line in self._data_lines()
                  if line.axes is ax and line.get_visible() and len(line.get_ydata())]
            span, exact = _finite_range(ys, log), False
            if span is not None and ax is self.ax_lower and self.lower_key == "lr" and log:
                widened = _widened(span)
                span, exact = widened, widened != span
            self._fit(ax, "y", span, live, exact)

    def _fit(self, ax, which: str, span, live: bool, exact: bool = False) -> None:
        """Set ``ax``'s ``which`` limits for data spanning ``span`` (None: no data,
        the limits stay). ``exact``: the span is the view (no margins)."""
        if span is None:
            return
        axis = ax.xaxis if which == "x" else ax.yaxis
        log = axis.get_scale() == "log"
        current = tuple(sorted(ax.get_xlim() if which == "x" else ax.get_ylim()))
        if exact:
            t0, t1 = _to(span, log)
        else:
            lo, hi = axis.get_major_locator().nonsingular(*span)
            if log and lo <= 0:
                lo = span[0]
            t0, t1 = _to((lo, hi), log)
            margin = (t1 - t0) * (ax.margins()[0 if which == "x" else 1])
            t0, t1 = t0 - margin, t1 + margin
        if live and all(np.isfinite(current)) and (not log or current[0] > 0):
            c0, c1 = _to(current, log)
            d0, d1 = _to(span, log)
            width = max(t1 - t0, 1e-300)
            if c0 <= d0 and d1 <= c1 and (c1 - c0) <= LOOSE * width:
                return  # the data is still in view: nothing behind the lines changes
            if d1 > c1:  # growing: leave room ahead, so the next points fit as they come
                t1 += HEADROOM * width
            if d0 < c0:
                t0 -= HEADROOM * width
        new = _from((t0, t1), log)
        if not np.allclose(new, current, rtol=1e-12, atol=0):
            if which == "x":
                ax.set_xlim(*new, auto=None)
            else:
                ax.set_ylim(*new, auto=None)

    def _place_phase_marker(self, has_data: bool) -> None:
        p = self.phase_1
        x0, x1 = sorted(self.ax_loss.get_xlim())
        inside = has_data and p is not None and x0 <= p <= x1
        for line in self.phase_lines:
            line.set_visible(inside)
            if inside and list(line.get_xdata()) != [p, p]:
                line.set_xdata([p, p])
        self.phase_label.set_visible(inside)
        if inside:  # the label beside the line, on the side with more room
            if self.phase_label.get_position()[0] != p:
                self.phase_label.set_x(p)
            align = "right" if p - x0 > 0.25 * (x1 - x0) else "left"
            if self.phase_label.get_horizontalalignment() != align:
                self.phase_label.set_horizontalalignment(align)

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

    def _visible(self, series: _Series) -> slice | None:
        """The slice of ``series`` in the zoomed x range (None when autoscaling)."""
        steps = series.data()[0]
        if series.ordered and not self.ax_loss.get_autoscalex_on() and steps.size:
            x0, x1 = sorted(self.ax_loss.get_xlim())
            i0 = max(0, int(np.searchsorted(steps, x0, "left")) - 1)
            i1 = int(np.searchsorted(steps, x1, "right")) + 1
            return slice(i0, i1)
        return None

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
            window = self._visible(series)
            raw.set_data(*series.decimated(0.0, window))
            raw.set_markevery(max(1, len(raw.get_xdata()) // MAX_MARKERS))  # a marker blob
            if term != "val_loss":  # RAVE logs every 50 steps: a short run has few points
                _mark_if_sparse(raw)
            if weight > 0:
                smooth.set_data(*series.decimated(weight, window))
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

    def _refresh_lower(self) -> None:
        chosen = key = self.lower_combo.currentData()
        has = {k: k in self._series and self._series[k].n > 0 for k in self.lower_lines}
        fidelity = self._fidelity_keys()
        has["fidelity"] = bool(fidelity)
        if chosen == "lr" and not has["lr"] and has["beta_factor"]:
            key = "beta_factor"  # RAVE logs no lr unless a LearningRateMonitor is added
        self.lower_key = key if has[key] else None
        title = LOWER_TITLES[key] + ("" if key == chosen else ": no learning rate logged")
        if self.ax_lower.get_title() != title:  # set_title restyles it: a full redraw
            self.ax_lower.set_title(title)
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
                                                            markersize=3, label=label,
                                                            animated=True)[0]
        for k, line in self.fidelity_lines.items():
            self._show_lower_line(line, k, self.lower_key == "fidelity" and k in fidelity)
        self._set_legend(self.ax_lower, [self.fidelity_lines[k] for k in fidelity]
                         if self.lower_key == "fidelity" else [])

    def _show_lower_line(self, line, key: str, shown: bool) -> None:
        line.set_visible(shown)
        if shown:
            series = self._series[key]
            line.set_data(*series.decimated(0.0, self._visible(series)))
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
        raw = self.ax_loss.plot([], [], label=term, animated=True, **style)[0]
        smooth_style = {k: v for k, v in style.items() if not k.startswith("marker")}
        smooth = self.ax_loss.plot([], [], label=f"_{term} (smoothed)", animated=True,
                                   **smooth_style)[0]
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


def _as_arrays(points) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one key of a history, as float arrays."""
    if isinstance(points, tuple) and len(points) == 2 and isinstance(points[0], np.ndarray):
        return np.asarray(points[0], dtype=float), np.asarray(points[1], dtype=float)
    steps, values = getattr(points, "steps", None), getattr(points, "values", None)
    if isinstance(steps, np.ndarray) and isinstance(values, np.ndarray):
        return steps.astype(float), values.astype(float)
    pairs = np.asarray(list(points), dtype=float).reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]


def _finite_range(arrays, log: bool) -> tuple[float, float] | None:
    """(min, max) of the finite (for ``log``: positive) values of all ``arrays``."""
    lo, hi = np.inf, -np.inf
    for a in arrays:
        a = np.asarray(a, dtype=float)
        a = a[np.isfinite(a) & (a > 0)] if log else a[np.isfinite(a)]
        if a.size:
            lo, hi = min(lo, float(a.min())), max(hi, float(a.max()))
    return (lo, hi) if lo <= hi else None


def _widened(span: tuple[float, float]) -> tuple[float, float]:
    """A learning rate that barely moves (one point; the first steps of RAVE's
    1e-3 -> 1e-4 decay over a million steps) gets a y range of at least a factor
    MIN_LOG_SPAN around it: a flat line with short labels (9e-4, 1e-3, 1.1e-3)
    rather than two decades, or ticks told apart at the 5th digit."""
    lo, hi = span
    if hi / lo >= MIN_LOG_SPAN:
        return span
    centre, half = np.sqrt(hi * lo), np.sqrt(MIN_LOG_SPAN)
    return centre / half, centre * half


def _to(span, log: bool) -> tuple[float, float]:
    return (float(np.log10(span[0])), float(np.log10(span[1]))) if log else (float(span[0]), float(span[1]))


def _from(span, log: bool) -> tuple[float, float]:
    return (10.0 ** span[0], 10.0 ** span[1]) if log else (float(span[0]), float(span[1]))


_PLAIN_NUMBERS = (float, int)  # the common case, checked first (numbers.Real is slow)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _fidelity_order(key: str) -> tuple:
    try:
        return (0, float(key[len(FIDELITY_PREFIX):]), key)
    except ValueError:
        return (1, 0.0, key)
