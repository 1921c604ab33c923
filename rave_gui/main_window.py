"""MainWindow: a sidebar of pages, the stacked pages, and what the whole window
owns: the RunController, TensorBoard, the system monitor, notifications and the
remembered window layout."""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import QSettings, QSize, Qt
from PyQt6.QtGui import QIcon, QKeySequence, QShortcut
from PyQt6.QtWidgets import (QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QMainWindow, QMessageBox,
                             QStackedWidget, QStyle, QSystemTrayIcon, QWidget)

from rave_gui import __version__
from rave_gui.backend.runs import RunController
from rave_gui.backend.tensorboard_service import TensorBoardService
from rave_gui.backend.training import TrainingManager
from rave_gui.ui.pages.datasets import DatasetsPage
from rave_gui.ui.pages.machines import MachinesPage
from rave_gui.ui.pages.models import ModelsPage
from rave_gui.ui.pages.training import TrainingPage
from rave_gui.ui.widgets.system_monitor import SystemMonitor, SystemMonitorLabel

ICON = Path(__file__).resolve().parent / "resources" / "icon.svg"
PAGE_TRAINING, PAGE_DATASETS, PAGE_MODELS, PAGE_MACHINES = 0, 1, 2, 3


def app_icon() -> QIcon:
    return QIcon(str(ICON))


class MainWindow(QMainWindow):
    def __init__(self, db, parent=None, monitor: bool = True):
        super().__init__(parent)
        self.db = db
        self.setWindowTitle(f"RAVE GUI {__version__}")
        self.setWindowIcon(app_icon())
        self.resize(1280, 800)
        #: window size, splitters and switches, kept beside the database (never in the system's folders)
        self.settings = QSettings(str(Path(db.path).parent / "settings.ini"), QSettings.Format.IniFormat)
        self.sidebar = QListWidget()
        self.sidebar.setFixedWidth(150)
        self.sidebar.setIconSize(QSize(20, 20))
        self.pages = QStackedWidget()
        #: the one owner of every run's process (the pages call it)
        self.runs = RunController(TrainingManager(db), parent=self)
        self.tensorboard = TensorBoardService()
        self.training_page = TrainingPage(self.db, controller=self.runs, tensorboard=self.tensorboard)
        self.datasets_page = DatasetsPage(self.db)
        self.models_page = ModelsPage(self.db, controller=self.runs)
        self.machines_page = MachinesPage(self.db)
        style = self.style()
        for page, title, icon in (
                (self.training_page, "Training", QStyle.StandardPixmap.SP_MediaPlay),
                (self.datasets_page, "Datasets", QStyle.StandardPixmap.SP_DirIcon),
                (self.models_page, "Models", QStyle.StandardPixmap.SP_DriveNetIcon),
                (self.machines_page, "Machines", QStyle.StandardPixmap.SP_ComputerIcon)):
            self.pages.addWidget(page)
            QListWidgetItem(style.standardIcon(icon), title, self.sidebar)
        self.sidebar.currentRowChanged.connect(self.pages.setCurrentIndex)
        self.sidebar.setCurrentRow(PAGE_TRAINING)
        self.training_page.go_to_datasets.connect(lambda: self.sidebar.setCurrentRow(PAGE_DATASETS))
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.addWidget(self.sidebar)
        layout.addWidget(self.pages, 1)
        self.setCentralWidget(central)

        # status bar: what runs (left), the machine (right)
        self.runs_summary = QLabel("")
        self.statusBar().addWidget(self.runs_summary)
        self.monitor = SystemMonitor(Path(db.path).parent, parent=self)
        self.monitor_label = SystemMonitorLabel(self.monitor)
        self.statusBar().addPermanentWidget(self.monitor_label)
        if monitor:
            self.monitor.start()
        self.runs.run_changed.connect(self._on_run_changed)
        self.runs.health_changed.connect(self._on_health)

        # notifications where the desktop has a tray (switch: notifications=false in settings.ini)
        self.tray = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.tray = QSystemTrayIcon(app_icon(), self)
            self.tray.setToolTip("RAVE GUI")
            self.tray.show()
        self.notifications: list[tuple[str, str]] = []  # (title, text) shown, newest last

        self.shortcuts = {
            "new": QShortcut(QKeySequence.StandardKey.New, self, activated=self._new_training),
            "stop": QShortcut(QKeySequence("Ctrl+."), self, activated=self._stop_selected)}
        for shortcut in self.shortcuts.values():
            shortcut.setContext(Qt.ShortcutContext.ApplicationShortcut)

        self.runs.reattach_all()
        self.training_page.model.refresh()
        self._update_summary()
        self._restore_layout()
        #: what closeEvent asks; tests replace it to answer without a dialog
        self.confirm_stop = self._ask_stop_runs

    # -- shortcuts -------------------------------------------------------------------------
    def _new_training(self) -> None:
        self.sidebar.setCurrentRow(PAGE_TRAINING)
        self.training_page.open_new_training()

    def _stop_selected(self) -> None:
        selected = self.training_page.selected_id
        if selected is not None and self.runs.is_live(selected):
            self.training_page.stop_experiment(selected)

    # -- what runs ------------------------------------------------------------------------
    def _update_summary(self) -> None:
        counts: dict[str, int] = {}
        for exp_id in self.runs.live_ids():
            exp = self.runs.manager.get_experiment(exp_id)
            if exp is not None:
                counts[exp["status"]] = counts.get(exp["status"], 0) + 1
        queued = len(self.runs.queued())
        parts = [f"{n} {status}" for status, n in sorted(counts.items())]
        if queued:
            parts.append(f"{queued} queued")
        self.runs_summary.setText(" · ".join(parts) if parts else "Nothing is training")

    def _on_run_changed(self, experiment_id: int, what: str) -> None:
        if what not in ("status", "queue"):
            return
        self._update_summary()
        if what == "status" and not self.runs.is_live(experiment_id):
            exp = self.runs.manager.get_experiment(experiment_id)
            if exp is not None and exp["status"] in ("completed", "failed"):
                text = exp["name"] + (f": {exp['error']}" if exp.get("error") else
                                      f" reached step {exp['current_step'] or 0:,}.")
                self.notify(f"Training {exp['status']}", text)

    def _on_health(self, experiment_id: int, kind: str, sentence: str) -> None:
        if sentence and kind in ("nan", "stalled", "disk", "memory"):
            exp = self.runs.manager.get_experiment(experiment_id)
            self.notify(f"{exp['name'] if exp else 'A run'}: {kind}", sentence)

    def notify(self, title: str, text: str) -> None:
        """A desktop notification (when switched on and the desktop has a tray)."""
        if not self.settings.value("notifications", True, type=bool):
            return
        self.notifications.append((title, text))
        if self.tray is not None:
            self.tray.showMessage(title, text, QSystemTrayIcon.MessageIcon.Information, 10_000)

    # -- layout remembered ------------------------------------------------------------------
    def _restore_layout(self) -> None:
        size = self.settings.value("window/size")
        if isinstance(size, QSize) and size.isValid():
            self.resize(size)
        if self.settings.value("window/maximized", False, type=bool):
            self.setWindowState(Qt.WindowState.WindowMaximized)
        splitter = self.settings.value("training/splitter")
        if splitter is not None:
            self.training_page.splitter.restoreState(splitter)

    def _save_layout(self) -> None:
        self.settings.setValue("window/maximized", self.isMaximized())
        if not self.isMaximized():
            self.settings.setValue("window/size", self.size())
        self.settings.setValue("training/splitter", self.training_page.splitter.saveState())
        self.settings.sync()

    # -- closing --------------------------------------------------------------------------------
    def _ask_stop_runs(self, count: int) -> bool:
        cluster = len(self.runs.cluster_ids())
        text = (f"{count} training run(s) are still running or saving their checkpoint. Stop them and quit?\n\n"
                "They are stopped cleanly (a checkpoint is saved) and can be resumed later.")
        if cluster:
            text += (f"\n\n{cluster} of them run(s) as Slurm jobs: those keep running on the cluster. The app "
                     "follows them again when it starts (and submits the next job of a run that reached its "
                     "time limit meanwhile).")
        answer = QMessageBox.question(self, "Trainings are running", text,
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event) -> None:
        live = self.runs.live_ids()
        if live and not self.confirm_stop(len(live)):
            event.ignore()
            return
        self._save_layout()
        self.models_page.shutdown()  # cancels model checks and tries, waits for their threads
        self.runs.stop_all(keep_cluster_jobs=True)
        self.machines_page.shutdown()  # a connection test still running
        self.tensorboard.stop()
        self.monitor.stop()
        if self.tray is not None:
            self.tray.hide()
        event.accept()
