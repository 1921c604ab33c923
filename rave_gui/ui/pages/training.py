"""TrainingPage: the experiments table, live run information, plot and log."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from PyQt6.QtCore import QItemSelectionModel, Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import (QAbstractItemView, QFormLayout, QGroupBox, QHBoxLayout, QHeaderView,
                             QLabel, QMessageBox, QPlainTextEdit, QProgressBar, QPushButton, QSplitter,
                             QTableView, QTabWidget, QVBoxLayout, QWidget)

from rave_gui.backend import rave_cli
from rave_gui.backend.checkpoints import delete_checkpoint
from rave_gui.backend.export import list_exports
from rave_gui.backend.gin_config import phase_1_duration_of_run
from rave_gui.backend.log_parsing import strip_progress
from rave_gui.backend.run_state import LIVE, describe
from rave_gui.backend.runs import RunController
from rave_gui.backend.system_monitor import Sample, describe_run_gpu_memory
from rave_gui.backend.tensorboard_service import TensorBoardService
from rave_gui.backend.training import TrainingManager
from rave_gui.core.formatting import format_clock
from rave_gui.ui.models.experiments_model import COL_ACTIONS, ExperimentsTableModel
from rave_gui.ui.widgets.action_delegate import ActionButtonDelegate
from rave_gui.ui.widgets.audio_view import AudioView
from rave_gui.ui.widgets.checkpoints_view import CheckpointsView
from rave_gui.ui.widgets.log_view import LogView
from rave_gui.ui.widgets.metrics_plot import MetricsPlot

LOG_TAIL_BYTES = 2_000_000


def read_log_lines(path: str | None, limit_bytes: int = LOG_TAIL_BYTES) -> list[str]:
    """The readable lines of a run's log (progress-bar redraws left out)."""
    if not path or not Path(path).is_file():
        return []
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - limit_bytes))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [kept for kept in map(strip_progress, lines) if kept]


class TrainingPage(QWidget):
    run_started = pyqtSignal(int)
    go_to_datasets = pyqtSignal()
    _tensorboard_done = pyqtSignal(str, str)  # url, error (from the thread that starts it)

    def __init__(self, db, parent=None, manager: TrainingManager | None = None,
                 controller: RunController | None = None, tensorboard: TensorBoardService | None = None):
        super().__init__(parent)
        self.db = db
        #: the real TensorBoard for "TensorBoard" (the main window stops it on close)
        self.tensorboard = tensorboard or TensorBoardService()
        if tensorboard is None:  # this page's own: it goes with the page
            self.destroyed.connect(self.tensorboard.stop)
        self.tensorboard_url: str | None = None
        self.open_browser = True  # tests turn it off
        self._tensorboard_done.connect(self._on_tensorboard_done)
        own = controller is None
        if controller is None:
            controller = RunController(manager or TrainingManager(db), parent=self)
        self.controller = controller
        self.manager = controller.manager
        self._details_timer = QTimer(self)
        self._details_timer.setSingleShot(True)
        self._details_timer.setInterval(1000)
        self._details_timer.timeout.connect(lambda: self.selected_id is not None
                                            and self._refresh_info(self.selected_id))
        self.selected_id: int | None = None
        self.wizard = None
        self.last_error: str | None = None
        self.last_warning: str | None = None
        #: the system monitor whose samples give a live run's GPU memory (``attach_monitor``)
        self.monitor = None
        self._gpu_sample: Sample | None = None
        self._build()
        controller.run_changed.connect(self._on_run_changed)
        controller.step_changed.connect(self._on_step)
        controller.metrics_added.connect(self._on_metrics)
        controller.log_line.connect(self._on_output)
        controller.export_progress.connect(self._on_export_progress)
        controller.export_done.connect(self._on_export_finished)
        controller.warning.connect(self._on_warning)
        self.model.alerts = controller.health
        self.model.notes = controller.notes  # a Slurm job waiting in the queue, and why
        if own:  # TrainingPage(self.db), as the design card writes it: this page's controller
            controller.reattach_all()
        self.model.refresh()
        self._update_empty_state()

    # -- layout -----------------------------------------------------------------
    def _build(self) -> None:
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        self.new_button = QPushButton("New Training…")
        self.new_button.clicked.connect(self.open_new_training)
        top.addWidget(self.new_button)
        self.compare_button = QPushButton("Compare…")
        self.compare_button.setToolTip("Select two or more runs (Ctrl+click) to overlay their losses "
                                       "and compare their settings")
        self.compare_button.clicked.connect(lambda: self.open_compare(self.selected_ids()))
        top.addWidget(self.compare_button)
        self.tensorboard_button = QPushButton("TensorBoard")
        self.tensorboard_button.setToolTip("Open the selected run(s) in TensorBoard, in your browser")
        self.tensorboard_button.clicked.connect(lambda: self.open_tensorboard(self.selected_ids()))
        top.addWidget(self.tensorboard_button)
        top.addStretch(1)
        lv.addLayout(top)
        self.model = ExperimentsTableModel(self.manager, self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)  # the name takes what is left
        # sized to the rows around the visible ones, not to every row at each update (1 000 runs)
        header.setResizeContentsPrecision(100)
        self.table.setWordWrap(False)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.actions = ActionButtonDelegate(self.table)
        self.actions.clicked.connect(self._on_action_clicked)
        self.table.setItemDelegateForColumn(COL_ACTIONS, self.actions)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        lv.addWidget(self.table)
        self.empty_label = QLabel("No trainings yet. Click “New Training…” to start one.")
        self.empty_label.setWordWrap(True)
        lv.addWidget(self.empty_label)
        self.empty_button = QPushButton("Go to Datasets")
        self.empty_button.clicked.connect(self.go_to_datasets.emit)
        lv.addWidget(self.empty_button)

        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        info = QGroupBox("Training information")
        form = QFormLayout(info)
        self.name_label = QLabel("–")
        self.status_label = QLabel("–")
        self.status_label.setWordWrap(True)
        self.step_label = QLabel("–")
        self.elapsed_label = QLabel("–")
        self.eta_label = QLabel("–")
        self.gpu_memory_label = QLabel("")
        self.gpu_memory_label.setWordWrap(True)
        self.gpu_memory_label.setToolTip("GPU memory the run's process (and its children) holds, "
                                         "read from NVIDIA's driver every 2 s")
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 100)
        form.addRow("Run:", self.name_label)
        form.addRow("Status:", self.status_label)
        form.addRow("Step:", self.step_label)
        form.addRow("Elapsed:", self.elapsed_label)
        form.addRow("ETA:", self.eta_label)
        form.addRow("GPU memory:", self.gpu_memory_label)
        form.setRowVisible(self.gpu_memory_label, False)  # shown for a live run on this computer's GPU
        self.info_form = form
        form.addRow(self.progress_bar)
        buttons = QHBoxLayout()
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(lambda: self.selected_id and self.stop_experiment(self.selected_id))
        buttons.addWidget(self.stop_button)
        self.resume_button = QPushButton("Resume")
        self.resume_button.clicked.connect(lambda: self.selected_id and self.resume_experiment(self.selected_id))
        buttons.addWidget(self.resume_button)
        self.export_button = QPushButton("Export for nn~ / VST…")
        self.export_button.clicked.connect(lambda: self.selected_id and self.open_export_dialog(self.selected_id))
        buttons.addWidget(self.export_button)
        self.queue_buttons = []
        for text, tip, slot in (
                ("Start now", "Start this queued run now, whatever else runs",
                 lambda: self._call(self.controller.start_queued, self.selected_id)),
                ("Move up", "Start this run earlier", lambda: self._call(self.controller.move, self.selected_id, -1)),
                ("Move down", "Start this run later", lambda: self._call(self.controller.move, self.selected_id, 1))):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(lambda _=False, slot=slot: self.selected_id is not None and slot())
            button.setVisible(False)
            buttons.addWidget(button)
            self.queue_buttons.append(button)
        self.export_label = QLabel("")
        self.export_label.setWordWrap(True)
        self.export_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons.addWidget(self.export_label, 1)
        form.addRow(buttons)
        self.buttons_layout = buttons
        rv.addWidget(info)
        self.health_banner = QLabel("")
        self.health_banner.setWordWrap(True)
        self.health_banner.setObjectName("warning")
        self.health_banner.setStyleSheet("QLabel#warning { background: #fff3cd; color: #664d03; "
                                         "border: 1px solid #ffe69c; border-radius: 4px; padding: 6px; }")
        self.health_banner.setVisible(False)
        rv.addWidget(self.health_banner)
        self.tabs = QTabWidget()
        self.plot = MetricsPlot()
        self.log_view = LogView()
        self.config_view = QPlainTextEdit()
        self.config_view.setReadOnly(True)
        self.tabs.addTab(self.plot, "Metrics")
        self.tabs.addTab(self.log_view, "Log")
        self.tabs.addTab(self.config_view, "Configuration")
        self.checkpoints = CheckpointsView()
        self.checkpoints.delete_requested.connect(self._delete_checkpoint)
        self.tabs.addTab(self.checkpoints, "Checkpoints")
        self.audio_view = AudioView()
        self.tabs.addTab(self.audio_view, "Audio")
        self._run_folder_shown: tuple | None = None  # (experiment id, RAVE run folder) the tabs follow
        rv.addWidget(self.tabs, 1)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 4)
        splitter.setStretchFactor(1, 6)
        splitter.setSizes([400, 600])
        self.splitter = splitter
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)
        self._update_empty_state()
        self._show_details(None)
        self.compare_button.setEnabled(False)
        self.tensorboard_button.setEnabled(False)

    def _update_empty_state(self) -> None:
        """Getting started: with no dataset yet, lead to the Datasets page first."""
        empty = self.model.rowCount() == 0
        no_dataset = empty and self.db.query_one("SELECT 1 FROM datasets LIMIT 1") is None
        self.empty_label.setText(
            "Getting started: a training needs a dataset. Make one from a folder of your audio "
            "on the Datasets page, then come back and click “New Training…”." if no_dataset else
            "No trainings yet. Click “New Training…” (Ctrl+N) to start one.")
        self.empty_label.setVisible(empty)
        self.empty_button.setVisible(no_dataset)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self._update_empty_state()  # a dataset may have been made meanwhile
        if self.monitor is None:  # the main window's status-bar monitor, once the page sits in it
            from rave_gui.ui.widgets.system_monitor import SystemMonitor
            monitor = getattr(self.window(), "monitor", None)
            if isinstance(monitor, SystemMonitor):
                self.attach_monitor(monitor)

    # -- GPU memory of the live runs ----------------------------------------------------
    def attach_monitor(self, monitor) -> None:
        """Follow ``monitor`` (a ``SystemMonitor``): it measures, off the UI thread, the GPU
        memory of this computer's live runs, and the selected run's is shown."""
        if self.monitor is monitor:
            return
        self.monitor = monitor
        monitor.sampled.connect(self._on_sample)
        self._send_runs_to_monitor()

    def _local_run_pids(self) -> dict[int, list[int]]:
        """Experiment id -> pid of the process of each live run on this computer
        (a run on another machine has no local process to measure)."""
        found = {}
        for exp_id in self.controller.live_ids():
            run = self.controller.live_run(exp_id)
            exp = self.manager.get_experiment(exp_id)
            if run is None or exp is None or exp["config"].get("machine_id") is not None:
                continue
            # the process it started, or the one it re-attached to (never the record's pid: a
            # resumed run's is its previous process's until the new one starts, and may be reused)
            pid = getattr(run.process, "pid", None) or getattr(run.process, "attach_pid", None)
            if pid:
                found[exp_id] = [int(pid)]
        return found

    def _send_runs_to_monitor(self) -> None:
        if self.monitor is not None:
            self.monitor.set_runs(self._local_run_pids())

    def _on_sample(self, s: Sample) -> None:
        self._gpu_sample = s
        self._show_gpu_memory()
        self._send_runs_to_monitor()  # a re-attached run's pid, a run that ended: the next sample follows

    def _show_gpu_memory(self) -> None:
        """The selected run's GPU memory, only while it lives on this computer and an NVIDIA
        GPU was read (otherwise the row is hidden: nothing to say that would be true)."""
        exp_id = self.selected_id
        text = describe_run_gpu_memory(self._gpu_sample, exp_id) \
            if exp_id is not None and self.controller.is_live(exp_id) else ""
        self.gpu_memory_label.setText(text)
        self.info_form.setRowVisible(self.gpu_memory_label, bool(text))

    # -- starting runs -------------------------------------------------------------------
    def open_new_training(self):
        """Open the wizard (non-blocking); finishing it starts the run."""
        from rave_gui.ui.dialogs.new_training import NewTrainingWizard
        self.wizard = NewTrainingWizard(self.db, self)
        self.wizard.accepted.connect(self._on_wizard_accepted)
        self.wizard.open()
        return self.wizard

    def _on_wizard_accepted(self) -> None:
        wizard = self.wizard
        config = wizard.get_config()
        self.start_run(config, queue=getattr(wizard, "start_mode", "now") == "queue")

    def start_run(self, config: dict, queue: bool = False) -> int | None:
        """Start a run now (or add it to the queue) and select its row."""
        try:
            exp_id = self.controller.enqueue(config) if queue else self.controller.start(config)
        except (ValueError, rave_cli.RaveNotFound) as exc:
            self.show_error(str(exc))
            return None
        self.model.refresh()
        self._update_empty_state()
        self.select_experiment(exp_id)
        self.run_started.emit(exp_id)
        return exp_id

    # -- actions --------------------------------------------------------------------------
    def _on_action_clicked(self, row: int, action: str) -> None:
        exp = self.model.experiment_at(row)
        if exp is None:
            return
        if action == "Stop":
            self.stop_experiment(exp["id"])
        elif action == "Resume":
            self.resume_experiment(exp["id"])
        elif action == "Start now":
            self._call(self.controller.start_queued, exp["id"])
        elif action == "Remove":
            self.stop_experiment(exp["id"])
        elif action in ("▲", "▼"):
            self._call(self.controller.move, exp["id"], -1 if action == "▲" else 1)

    def _call(self, method, *args) -> bool:
        try:
            method(*args)
        except ValueError as exc:
            self.show_error(str(exc))
            return False
        return True

    def stop_experiment(self, experiment_id: int) -> None:
        self._call(self.controller.stop, experiment_id)

    def resume_experiment(self, experiment_id: int, max_steps: int | None = None) -> bool:
        exp = self.manager.get_experiment(experiment_id)
        if max_steps is None and exp is not None and exp["status"] == "completed":
            from PyQt6.QtWidgets import QInputDialog
            done = int(exp["config"]["max_steps"])
            max_steps, ok = QInputDialog.getInt(
                self, "Continue training", f"This run completed {done:,} steps. Train up to step:",
                min(done * 2, 100_000_000), min(done + 1, 100_000_000), 100_000_000, 1000)
            if not ok:
                return False
        if not self._call(self.controller.resume, experiment_id, max_steps):
            return False
        self.select_experiment(experiment_id)
        if experiment_id == self.selected_id:
            self._show_details(experiment_id)  # the history after the checkpoint is gone
        return True

    def open_export_dialog(self, experiment_id: int):
        """Ask for the export options (non-blocking); OK starts the export."""
        from rave_gui.ui.dialogs.export_checkpoint import ExportCheckpointDialog
        dialog = ExportCheckpointDialog(self.manager, experiment_id, self)
        dialog.accepted.connect(lambda: self.export_experiment(experiment_id, **dialog.options()))
        dialog.open()
        self.export_dialog = dialog
        return dialog

    def export_experiment(self, experiment_id: int, output_dir=None, streaming: bool = True,
                          fidelity: float = 0.95, **extra) -> bool:
        """Run `rave export` in the background; the result shows next to the button
        (``extra``: checkpoint, verify, for a local run's CheckpointExportProcess)."""
        options = {"output_dir": output_dir, "streaming": streaming, "fidelity": fidelity, **extra}
        return self._call(self.controller.export, experiment_id, options)

    def _on_export_progress(self, experiment_id: int, _percent: int, what: str) -> None:
        if experiment_id == self.selected_id:
            self.export_label.setText(f"Exporting… {what}")

    def _on_export_finished(self, experiment_id: int, ok: bool, message: str) -> None:
        if not ok:
            self.show_error(f"Export failed: {message}")

    def _on_warning(self, experiment_id: int, text: str) -> None:
        self.last_warning = text
        window = self.window()
        if window is not self and hasattr(window, "statusBar"):
            window.statusBar().showMessage(text, 30_000)

    def _delete_checkpoint(self, path: str) -> None:
        exp = self.manager.get_experiment(self.selected_id) if self.selected_id else None
        if exp is None:
            return
        try:
            delete_checkpoint(self.manager.paths(exp).run_dir, path)
        except (ValueError, OSError) as exc:
            self.show_error(str(exc))
        self._refresh_info(exp["id"])

    def show_error(self, text: str) -> None:
        self.last_error = text
        box = QMessageBox(QMessageBox.Icon.Warning, "RAVE GUI", text, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    # -- selection and details ----------------------------------------------------------------
    def select_experiment(self, experiment_id: int) -> None:
        row = self.model.row_of(experiment_id)
        if row < 0:
            self.model.refresh()
            row = self.model.row_of(experiment_id)
        if row >= 0:
            self.table.selectionModel().select(
                self.model.index(row, 0),
                QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)

    def selected_ids(self) -> list[int]:
        rows = sorted(index.row() for index in self.table.selectionModel().selectedRows())
        return [exp["id"] for exp in map(self.model.experiment_at, rows) if exp is not None]

    def _on_selection(self, *_):
        rows = self.table.selectionModel().selectedRows()
        current = self.table.selectionModel().currentIndex()
        row = current.row() if current.isValid() and any(r.row() == current.row() for r in rows) else (
            rows[0].row() if rows else -1)
        exp = self.model.experiment_at(row)
        count = len(rows)
        self.compare_button.setEnabled(count >= 2)
        self.tensorboard_button.setEnabled(count >= 1)
        if exp is None or exp["id"] != self.selected_id:
            self._show_details(exp["id"] if exp else None)

    # -- compare and TensorBoard ---------------------------------------------------------------
    def open_compare(self, experiment_ids: list[int]):
        """Overlay the runs' losses, their summary and their settings (live runs keep updating)."""
        from rave_gui.ui.dialogs.compare_runs import CompareRunsDialog
        if len(experiment_ids) < 2:
            self.show_error("Select two or more runs to compare (Ctrl+click or Shift+click in the table).")
            return None
        dialog = CompareRunsDialog(self.manager, experiment_ids, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        on_metrics = dialog.add_metrics
        on_status = lambda e, what: what == "status" and e in dialog.experiment_ids and dialog.refresh()  # noqa: E731
        self.controller.metrics_added.connect(on_metrics)
        self.controller.run_changed.connect(on_status)

        def disconnect(*_):
            for signal, slot in ((self.controller.metrics_added, on_metrics),
                                 (self.controller.run_changed, on_status)):
                try:
                    signal.disconnect(slot)
                except (TypeError, RuntimeError):
                    pass
        dialog.destroyed.connect(disconnect)
        dialog.show()
        self.compare_dialog = dialog
        return dialog

    def open_tensorboard(self, experiment_ids: list[int]) -> bool:
        """Start (or reuse) the real TensorBoard on 127.0.0.1 for the runs, in the background,
        and open the browser when it answers."""
        runs = {}
        for exp_id in experiment_ids:
            exp = self.manager.get_experiment(exp_id)
            run_dir = self.manager.paths(exp).run_dir if exp else None
            if run_dir is not None and run_dir.is_dir():
                runs[exp["name"]] = run_dir
        if not runs:
            self.show_error("These runs have no TensorBoard files yet: RAVE writes them once a run has started.")
            return False
        self.tensorboard_button.setEnabled(False)
        self.tensorboard_button.setText("Starting TensorBoard…")

        def work():
            try:
                self._tensorboard_done.emit(self.tensorboard.open(runs), "")
            except Exception as exc:  # noqa: BLE001 - shown as a sentence
                self._tensorboard_done.emit("", str(exc))
        threading.Thread(target=work, name="tensorboard-start", daemon=True).start()
        return True

    def _on_tensorboard_done(self, url: str, error: str) -> None:
        self.tensorboard_button.setText("TensorBoard")
        self.tensorboard_button.setEnabled(bool(self.selected_ids()))
        self.tensorboard_url = url or None
        if error:
            self.show_error(f"TensorBoard could not start: {error}")
        elif self.open_browser:
            import webbrowser
            webbrowser.open(url)

    def _show_details(self, experiment_id: int | None) -> None:
        self.selected_id = experiment_id
        exp = self.manager.get_experiment(experiment_id) if experiment_id is not None else None
        if exp is None:
            self.plot.clear()
            for label in (self.name_label, self.status_label, self.step_label, self.elapsed_label, self.eta_label):
                label.setText("–")
            self.progress_bar.setValue(0)
            self.log_view.set_lines([])
            self.config_view.setPlainText("")
            for button in (self.stop_button, self.resume_button, self.export_button):
                button.setEnabled(False)
            for button in self.queue_buttons:
                button.setVisible(False)
            self.checkpoints.set_checkpoints([])
            self.export_label.setText("")
            self._follow_run_folder(None)
            self._show_health(None)
            self.plot.set_phase_1(None)
            self._show_gpu_memory()
            return
        self.name_label.setText(exp["name"])
        self._show_health(experiment_id)
        self.plot.load_history(self.manager, experiment_id)  # cached: at once; else an overview, then the whole run
        self._phase_from_gin = self._show_plot_context(exp)
        self.log_view.set_lines(read_log_lines(exp.get("log_path")))
        self.config_view.setPlainText(self._config_text(exp))
        self._refresh_info(experiment_id)

    def _show_plot_context(self, exp: dict) -> bool:
        """The logging interval and the phase-2 marker of the selected run; True once
        they came from the run's own config.gin (overrides included)."""
        cfg = exp["config"]
        self.plot.set_log_every(cfg.get("log_every"))
        step = phase_1_duration_of_run(self.manager.paths(exp).run_dir)
        from_gin = step is not None
        if not from_gin:  # queued or starting: no config.gin yet, so predict it from the config
            step = rave_cli.phase_1_duration(cfg["base_config"], cfg.get("modifiers", []), cfg.get("overrides", []))
        self.plot.set_phase_1(step)
        return from_gin

    def _show_health(self, experiment_id: int | None) -> None:
        flags = self.controller.health.get(experiment_id, {}) if experiment_id is not None else {}
        self.health_banner.setText("\n".join(f"⚠ {sentence}" for sentence in flags.values()))
        self.health_banner.setVisible(bool(flags))

    def _follow_run_folder(self, exp: dict | None) -> None:
        """Point the tabs that read RAVE's run folder (Audio) at the selected run's,
        once it exists (a new run's folder appears when RAVE starts)."""
        run_dir = self.manager.paths(exp).run_dir if exp is not None else None
        key = (exp["id"], str(run_dir)) if exp is not None and run_dir is not None else None
        if key == self._run_folder_shown:
            return
        self._run_folder_shown = key
        if key is None:
            self.audio_view.set_run(None)
            return
        dataset = self.db.query_one("SELECT channels FROM datasets WHERE id = ?", (exp["config"].get("dataset_id"),))
        self.audio_view.set_run(str(run_dir), channels=int(dataset["channels"] or 1) if dataset else 1)

    def _config_text(self, exp: dict) -> str:
        final = {k: v for k, v in (exp.get("metrics") or {}).items() if not k.startswith("_")}
        parts = ["Configuration:", json.dumps(exp["config"], indent=2, ensure_ascii=False),
                 "", "Final metrics:", json.dumps(final, indent=2) if final else "(none yet)",
                 "", "History:"]
        for event in self.manager.get_events(exp["id"]):
            step = f" at step {event['step']:,}" if event["step"] is not None else ""
            detail = f" — {event['detail']}" if event["detail"] else ""
            parts.append(f"  {event['at'].replace('T', ' ')}  {event['kind']}{step}{detail}")
        parts += ["", f"Output folder: {exp.get('out_dir')}", f"Log: {exp.get('log_path')}"]
        return "\n".join(parts)

    def _refresh_info(self, experiment_id: int, live_only: bool = False) -> None:
        """Fill the information group; ``live_only`` (a step update) skips the
        checkpoint folder scan and the exports query."""
        exp = self.manager.get_experiment(experiment_id)
        if exp is None:
            return
        run = self.controller.live_run(experiment_id)
        total = int(exp["config"].get("max_steps", 0))
        step = run.step if run else int(exp.get("current_step") or 0)
        status = describe(exp["status"], step)
        if exp.get("error"):
            status += f": {exp['error']}"
        self.status_label.setText(status)
        self.step_label.setText(f"{step:,} / {total:,}")
        self.progress_bar.setValue(int(100 * step / total) if total else 0)
        if run is not None:
            self.elapsed_label.setText(format_clock(time.monotonic() - run.started))
            self.eta_label.setText(format_clock(run.eta_seconds()))
        else:
            self.elapsed_label.setText("–")
            self.eta_label.setText("–")
        self._show_gpu_memory()
        live = self.controller.is_live(experiment_id)
        exporting = self.controller.exporting(experiment_id)
        queued = exp["status"] == "queued"
        self.stop_button.setEnabled((live and exp["status"] != "stopping") or queued)
        self.stop_button.setText("Remove from queue" if queued else "Stop")
        for button in self.queue_buttons:
            button.setVisible(queued)
        self.resume_button.setEnabled(not live and exp["status"] not in LIVE and exp["status"] != "queued"
                                      and bool(exp.get("started_at")))
        self.export_button.setEnabled(not live and exp["status"] not in LIVE and exp["status"] != "queued"
                                      and not exporting)
        if live_only:
            return
        self.config_view.setPlainText(self._config_text(exp))  # its history lists the events
        self._follow_run_folder(exp)
        self.checkpoints.set_checkpoints(self.manager.paths(exp).checkpoints() if exp.get("out_dir") else [])
        done = list_exports(self.db, experiment_id)
        if exporting:
            self.export_label.setText("Exporting…")
        elif done:
            self.export_label.setText(f"Exported: {done[0]['path']}")
        else:
            self.export_label.setText("")

    # -- live signals -------------------------------------------------------------------------
    def _on_output(self, experiment_id: int, line: str) -> None:
        if experiment_id == self.selected_id:
            kept = strip_progress(line)
            if kept:
                self.log_view.append_line(kept)

    def _on_step(self, experiment_id: int, step: int, total: int) -> None:
        self.model.set_step(experiment_id, step)
        if experiment_id == self.selected_id:
            self._refresh_info(experiment_id, live_only=True)

    def _on_metrics(self, experiment_id: int, metrics: dict) -> None:
        if experiment_id == self.selected_id:
            now = time.monotonic()  # thousands of points a second: look for config.gin once a second
            if not getattr(self, "_phase_from_gin", True) and now >= getattr(self, "_phase_checked", 0.0) + 1.0:
                self._phase_checked = now  # has the run folder appeared since?
                self._phase_from_gin = self._show_plot_context(self.manager.get_experiment(experiment_id))
            self.plot.update_metrics(metrics)

    def _on_run_changed(self, experiment_id: int, what: str) -> None:
        if what in ("status", "queue"):
            exp = self.manager.get_experiment(experiment_id)
            in_queue = (exp is not None and exp["status"] == "queued") or any(
                e["status"] == "queued" for e in self.model.experiments())
            if what == "queue" or in_queue or self.model.row_of(experiment_id) < 0:
                # the queue's order and every queued row's place may have changed
                self.model.refresh()
                if self.selected_id is not None:
                    self.select_experiment(self.selected_id)
            else:
                self.model.update_experiment(experiment_id)
            self._update_empty_state()
            self._send_runs_to_monitor()  # started (its pid is known) or ended
            if experiment_id == self.selected_id:
                self._refresh_info(experiment_id)
        elif what == "health":
            self.model.update_experiment(experiment_id)
            if experiment_id == self.selected_id:
                self._show_health(experiment_id)
        elif what == "checkpoints" and experiment_id == self.selected_id:
            self.audio_view.refresh()  # a validation: RAVE logged its audio with it
            self._details_timer.start()
        elif what == "export" and experiment_id == self.selected_id:
            self._details_timer.start()  # coalesced: a flood of validations never stalls the window

    # -- shutdown -------------------------------------------------------------------------------
    def live_runs(self) -> list[int]:
        """Runs with a live process (stopping ones included)."""
        return self.controller.live_ids()

    def stop_all(self, wait_ms: int = 60_000) -> None:
        """Stop every run (each saves a stop checkpoint) and export, and wait for them."""
        self.controller.stop_all(wait_ms / 1000)
