"""MainWindow: a sidebar of pages and the stacked pages themselves."""
from __future__ import annotations

from PyQt6.QtWidgets import (QHBoxLayout, QListWidget, QMainWindow, QMessageBox, QStackedWidget,
                             QWidget)

from rave_gui import __version__
from rave_gui.backend.runs import RunController
from rave_gui.backend.tensorboard_service import TensorBoardService
from rave_gui.backend.training import TrainingManager
from rave_gui.ui.pages.datasets import DatasetsPage
from rave_gui.ui.pages.training import TrainingPage


class MainWindow(QMainWindow):
    def __init__(self, db, parent=None):
        super().__init__(parent)
        self.db = db
        self.setWindowTitle(f"RAVE GUI {__version__}")
        self.resize(1280, 800)
        self.sidebar = QListWidget()
        self.sidebar.setFixedWidth(150)
        self.pages = QStackedWidget()
        #: the one owner of every run's process (the pages call it)
        self.runs = RunController(TrainingManager(db), parent=self)
        self.tensorboard = TensorBoardService()
        self.training_page = TrainingPage(self.db, controller=self.runs, tensorboard=self.tensorboard)
        self.datasets_page = DatasetsPage(self.db)
        self.pages.addWidget(self.training_page)
        self.pages.addWidget(self.datasets_page)
        self.sidebar.addItems(["Training", "Datasets"])
        self.sidebar.currentRowChanged.connect(self.pages.setCurrentIndex)
        self.sidebar.setCurrentRow(0)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.addWidget(self.sidebar)
        layout.addWidget(self.pages, 1)
        self.setCentralWidget(central)
        self.runs.reattach_all()
        self.training_page.model.refresh()
        self.statusBar().showMessage(f"Database: {db.path}")
        #: what closeEvent asks; tests replace it to answer without a dialog
        self.confirm_stop = self._ask_stop_runs

    def _ask_stop_runs(self, count: int) -> bool:
        answer = QMessageBox.question(
            self, "Trainings are running",
            f"{count} training run(s) are still running or saving their checkpoint. Stop them and quit?\n\n"
            "They are stopped cleanly (a checkpoint is saved) and can be resumed later.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event) -> None:
        live = self.runs.live_ids()
        if live and not self.confirm_stop(len(live)):
            event.ignore()
            return
        self.runs.stop_all()
        self.tensorboard.stop()
        event.accept()
