"""TrainingPage: the experiments table, live run information, plot and log."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from PyQt6.QtCore import QItemSelectionModel, Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import (QAbstractItemView, QFormLayout, QGroupBox, QHBoxLayout, QHeaderView,
                             QLabel, QMessageBox, QPlainTextEdit, QProgressBar, QPushButton, QSplitter,
                             QTableView, QTabWidget, QVBoxLayout, QWidget)

from rave_gui.backend import rave_cli
from rave_gui.backend.log_parsing import strip_progress
from rave_gui.backend.training import TrainingManager, TrainingProcess
from rave_gui.core.process import end_group
from rave_gui.core.signals import app_signals
from rave_gui.ui.models.experiments_model import COL_ACTIONS, ExperimentsTableModel
from rave_gui.backend.checkpoints import delete_checkpoint, list_checkpoints
from rave_gui.backend.export import ExportProcess, list_exports
from rave_gui.backend.training_process import find_run_dir
from rave_gui.ui.widgets.action_delegate import ActionButtonDelegate
from rave_gui.ui.widgets.checkpoints_view import CheckpointsView
from rave_gui.ui.widgets.log_view import LogView
from rave_gui.ui.widgets.metrics_plot import MetricsPlot

LOG_TAIL_BYTES = 2_000_000


def read_log_lines(path: str | None, limit_bytes: int = LOG_TAIL_BYTES) -> list[str]:
    """The readable lines of a run's log (progress-bar redraws left out)."""
    if not path or not Path(path).is_file():
        return []
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - limit_bytes))
        text = fh.read().decode("utf-8", "replace")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [kept for kept in map(strip_progress, lines) if kept]


def format_seconds(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "–"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}"


@dataclass
class LiveRun:
    """What the page keeps for a run it launched (one per live row)."""
    process: object
    started: float = field(default_factory=time.monotonic)
    first_step: int | None = None
    step: int = 0
    total: int = 0


class TrainingPage(QWidget):
    run_started = pyqtSignal(int)

    def __init__(self, db, parent=None, manager: TrainingManager | None = None):
        super().__init__(parent)
        self.db = db
        self.manager = manager or TrainingManager(db)
        self.live: dict[int, LiveRun] = {}
        self.exports: dict[int, ExportProcess] = {}
        self._details_timer = QTimer(self)
        self._details_timer.setSingleShot(True)
        self._details_timer.setInterval(1000)
        self._details_timer.timeout.connect(lambda: self.selected_id is not None
                                            and self._refresh_info(self.selected_id))
        self.selected_id: int | None = None
        self.wizard = None
        self.last_error: str | None = None
        self._build()
        signals = app_signals()
        for sig in (signals.training_completed, signals.training_stopped, signals.experiment_changed):
            sig.connect(self._on_experiment_changed)
        signals.training_failed.connect(self._on_training_failed)  # a bound method: disconnected when the page goes
        self.recover_runs()

    def recover_runs(self) -> None:
        """Re-attach to runs an earlier session left training; mark the dead ones interrupted."""
        alive, _interrupted = self.manager.recover_runs()
        for exp_id, pid in alive:
            process = TrainingProcess(self.manager, exp_id, attach_pid=pid)
            self.attach(exp_id, process)
            process.start()
        self.model.refresh()

    # -- layout -----------------------------------------------------------------
    def _build(self) -> None:
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        self.new_button = QPushButton("New Training…")
        self.new_button.clicked.connect(self.open_new_training)
        lv.addWidget(self.new_button)
        self.model = ExperimentsTableModel(self.manager, self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.actions = ActionButtonDelegate(self.table)
        self.actions.clicked.connect(self._on_action_clicked)
        self.table.setItemDelegateForColumn(COL_ACTIONS, self.actions)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        lv.addWidget(self.table)
        self.empty_label = QLabel("No trainings yet. Click “New Training…” to start one.")
        self.empty_label.setWordWrap(True)
        lv.addWidget(self.empty_label)

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
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 100)
        form.addRow("Run:", self.name_label)
        form.addRow("Status:", self.status_label)
        form.addRow("Step:", self.step_label)
        form.addRow("Elapsed:", self.elapsed_label)
        form.addRow("ETA:", self.eta_label)
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
        self.export_label = QLabel("")
        self.export_label.setWordWrap(True)
        self.export_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons.addWidget(self.export_label, 1)
        form.addRow(buttons)
        self.buttons_layout = buttons
        rv.addWidget(info)
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
        rv.addWidget(self.tabs, 1)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 7)
        splitter.setSizes([300, 700])
        self.splitter = splitter
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)
        self._update_empty_state()
        self._show_details(None)

    def _update_empty_state(self) -> None:
        self.empty_label.setVisible(self.model.rowCount() == 0)

    # -- starting runs -------------------------------------------------------------------
    def open_new_training(self):
        """Open the wizard (non-blocking); finishing it starts the run."""
        from rave_gui.ui.dialogs.new_training import NewTrainingWizard
        self.wizard = NewTrainingWizard(self.db, self)
        self.wizard.accepted.connect(lambda: self.start_run(self.wizard.get_config()))
        self.wizard.open()
        return self.wizard

    def start_run(self, config: dict) -> int | None:
        """Create the experiment, start its TrainingProcess, select its row."""
        try:
            rave_cli.find_rave()  # before anything is written
            exp_id = self.manager.start_training(config)
        except (ValueError, rave_cli.RaveNotFound) as exc:
            self.show_error(str(exc))
            return None
        self.launch(exp_id)
        self.select_experiment(exp_id)
        self.run_started.emit(exp_id)
        return exp_id

    def launch(self, experiment_id: int, resume: bool = False) -> TrainingProcess:
        process = TrainingProcess(self.manager, experiment_id, resume=resume)
        self.attach(experiment_id, process)
        process.start()
        return process

    def attach(self, experiment_id: int, process) -> None:
        """Follow a process's signals for one row (a launched or re-attached run)."""
        self.manager.register_process(experiment_id, process)
        exp = self.manager.get_experiment(experiment_id)
        run = LiveRun(process, total=int(exp["config"].get("max_steps", 0)), step=exp.get("current_step") or 0)
        self.live[experiment_id] = run
        process.output.connect(lambda line, e=experiment_id: self._on_output(e, line))
        process.step_update.connect(lambda step, total, e=experiment_id: self._on_step(e, step, total))
        process.metrics_update.connect(lambda m, e=experiment_id: self._on_metrics(e, m))
        process.finished.connect(lambda ok, msg, e=experiment_id, p=process: self._on_finished(e, p))
        self.model.refresh()
        self._update_empty_state()

    # -- actions --------------------------------------------------------------------------
    def _on_action_clicked(self, row: int, action: str) -> None:
        exp = self.model.experiment_at(row)
        if exp is None:
            return
        if action == "Stop":
            self.stop_experiment(exp["id"])
        elif action == "Resume":
            self.resume_experiment(exp["id"])

    def stop_experiment(self, experiment_id: int) -> None:
        self.manager.stop_training(experiment_id)
        self.model.update_experiment(experiment_id)
        if experiment_id == self.selected_id:
            self._show_details(experiment_id)

    def resume_experiment(self, experiment_id: int, max_steps: int | None = None) -> TrainingProcess | None:
        exp = self.manager.get_experiment(experiment_id)
        if max_steps is None and exp is not None and exp["status"] == "completed":
            from PyQt6.QtWidgets import QInputDialog
            done = int(exp["config"]["max_steps"])
            max_steps, ok = QInputDialog.getInt(
                self, "Continue training", f"This run completed {done:,} steps. Train up to step:",
                done * 2, done + 1, 100_000_000, 1000)
            if not ok:
                return None
        try:
            self.manager.resume_training(experiment_id, max_steps=max_steps)
        except ValueError as exc:
            self.show_error(str(exc))
            return None
        process = self.launch(experiment_id, resume=True)
        self.select_experiment(experiment_id)
        return process

    def open_export_dialog(self, experiment_id: int):
        """Ask for the export options (non-blocking); OK starts the export."""
        from rave_gui.ui.dialogs.export_dialog import ExportDialog
        exp = self.manager.get_experiment(experiment_id)
        dialog = ExportDialog(str(Path(exp["out_dir"]) / "export"), self)
        dialog.accepted.connect(lambda: self.export_experiment(experiment_id, **dialog.options()))
        dialog.open()
        self.export_dialog = dialog
        return dialog

    def export_experiment(self, experiment_id: int, output_dir=None, streaming: bool = True,
                          fidelity: float = 0.95) -> ExportProcess | None:
        """Run `rave export` in the background; the result shows next to the button."""
        try:
            process = ExportProcess(self.manager, experiment_id, output_dir, streaming, fidelity)
        except ValueError as exc:
            self.show_error(str(exc))
            return None
        self.exports[experiment_id] = process
        process.progress.connect(lambda pct, msg, e=experiment_id: e == self.selected_id
                                 and self.export_label.setText(f"Exporting… {msg}"))
        process.finished.connect(lambda ok, msg, e=experiment_id: self._on_export_finished(e, ok, msg))
        process.start()
        self._refresh_info(experiment_id)
        return process

    def _on_export_finished(self, experiment_id: int, ok: bool, message: str) -> None:
        process = self.exports.pop(experiment_id, None)
        if process is not None:
            process.wait(1000)
        if not ok:
            self.show_error(f"Export failed: {message}")
        if experiment_id == self.selected_id:
            self._refresh_info(experiment_id)

    def _delete_checkpoint(self, path: str) -> None:
        exp = self.manager.get_experiment(self.selected_id) if self.selected_id else None
        if exp is None:
            return
        try:
            delete_checkpoint(find_run_dir(exp["out_dir"]), path)
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

    def _on_selection(self, *_):
        rows = self.table.selectionModel().selectedRows()
        exp = self.model.experiment_at(rows[0].row()) if rows else None
        self._show_details(exp["id"] if exp else None)

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
            self.checkpoints.set_checkpoints([])
            self.export_label.setText("")
            return
        self.name_label.setText(exp["name"])
        self.plot.set_history(self.manager.get_metric_history(experiment_id))  # replaces, draws once
        self.log_view.set_lines(read_log_lines(exp.get("log_path")))
        self.config_view.setPlainText(self._config_text(exp))
        self._refresh_info(experiment_id)

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
        run = self.live.get(experiment_id)
        total = int(exp["config"].get("max_steps", 0))
        step = run.step if run else int(exp.get("current_step") or 0)
        status = exp["status"]
        if exp.get("error"):
            status += f": {exp['error']}"
        self.status_label.setText(status)
        self.step_label.setText(f"{step:,} / {total:,}")
        self.progress_bar.setValue(int(100 * step / total) if total else 0)
        if run is not None:
            elapsed = time.monotonic() - run.started
            self.elapsed_label.setText(format_seconds(elapsed))
            done = step - (run.first_step if run.first_step is not None else step)
            rate = done / elapsed if elapsed > 0 and done > 0 else None
            self.eta_label.setText(format_seconds((total - step) / rate) if rate else "–")
        else:
            self.elapsed_label.setText("–")
            self.eta_label.setText("–")
        active = self.manager.is_active(experiment_id)
        self.stop_button.setEnabled(active)
        self.resume_button.setEnabled(not active and exp["status"] != "running")
        self.export_button.setEnabled(not active and exp["status"] != "running"
                                      and experiment_id not in self.exports)
        if live_only:
            return
        self.checkpoints.set_checkpoints(list_checkpoints(find_run_dir(exp["out_dir"])) if exp.get("out_dir") else [])
        done = list_exports(self.db, experiment_id)
        if experiment_id in self.exports:
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
        run = self.live.get(experiment_id)
        if run is not None:
            if run.first_step is None:
                run.first_step, run.started = step, time.monotonic()
            run.step, run.total = step, total
        self.model.set_step(experiment_id, step)
        if experiment_id == self.selected_id:
            self._refresh_info(experiment_id, live_only=True)

    def _on_metrics(self, experiment_id: int, metrics: dict) -> None:
        if experiment_id == self.selected_id:
            self.plot.update_metrics(metrics)
            if "val_loss" in metrics:  # RAVE checkpoints at validation: refresh that tab (coalesced)
                self._details_timer.start()

    def _on_finished(self, experiment_id: int, process) -> None:
        """Forget a run's process once its thread is done (the row and details
        were refreshed by the AppSignals the run emitted)."""
        run = self.live.get(experiment_id)
        if run is not None and run.process is process:  # not a newer process of a resumed run
            del self.live[experiment_id]
        process.wait(5000)  # finished is emitted from inside run(): let the thread end first
        self._on_experiment_changed(experiment_id)

    def _on_training_failed(self, experiment_id: int, _reason: str) -> None:
        self._on_experiment_changed(experiment_id)

    def _on_experiment_changed(self, experiment_id: int) -> None:
        self.model.update_experiment(experiment_id)
        self._update_empty_state()
        if experiment_id == self.selected_id:
            self._refresh_info(experiment_id)

    # -- shutdown -------------------------------------------------------------------------------
    def live_runs(self) -> list[int]:
        return [e for e in self.live if self.manager.is_active(e)]

    def stop_all(self, wait_ms: int = 60_000) -> None:
        """Stop every run (each saves a stop checkpoint) and export, and wait for
        them: nothing is left running behind a closed window."""
        processes = [run.process for run in self.live.values()] + list(self.exports.values())
        self.manager.stop_all()
        for export in self.exports.values():
            export.stop()
        for process in processes:
            if not process.wait(wait_ms) and getattr(process, "pid", None):
                end_group(process.pid)  # did not stop in time: end the whole group
                process.wait(10_000)
