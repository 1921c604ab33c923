"""NewTrainingWizard: dataset -> config -> parameters -> confirmation.

The wizard never starts anything. It is accepted two ways, both after the
same validation: "Start now" (the Finish button) and "Add to queue" (a custom
button on the last page only). ``start_mode`` then says which ("now" or
"queue"); ``get_config()`` is exactly the dict ``TrainingManager.start_training``
takes, and ``validated_config()`` the normalised one ``validate_config`` returned.
"""
from __future__ import annotations

from PyQt6.QtWidgets import QDialog, QWizard

from rave_gui.backend.machines import MachineManager
from rave_gui.backend.rave_cli import detect_gpus
from rave_gui.backend.training import DEFAULTS
from rave_gui.ui.dialogs.new_training.config_page import ConfigSelectionPage
from rave_gui.ui.dialogs.new_training.confirmation_page import ConfirmationPage
from rave_gui.ui.dialogs.new_training.dataset_page import DatasetSelectionPage
from rave_gui.ui.dialogs.new_training.parameters_page import TrainingParametersPage

PAGE_DATASET, PAGE_CONFIG, PAGE_PARAMETERS, PAGE_CONFIRM = range(4)
START_NOW, ADD_TO_QUEUE = "now", "queue"
QUEUE_BUTTON = QWizard.WizardButton.CustomButton1


class NewTrainingWizard(QWizard):
    """Dataset -> config -> parameters -> confirmation. ``get_config()`` is
    what ``TrainingManager.start_training`` takes; the wizard starts nothing.
    ``start_mode`` is "now" (Start now) or "queue" (Add to queue) once accepted."""

    def __init__(self, db, parent=None, gpus: list[str] | None = None):
        super().__init__(parent)
        self.db = db
        self.gpus: list[str] = list(detect_gpus() if gpus is None else gpus)
        self.start_mode: str = START_NOW
        self.setWindowTitle("New Training")
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage, True)

        self.dataset_page = DatasetSelectionPage(db)
        self.config_page = ConfigSelectionPage()
        self.parameters_page = TrainingParametersPage(self.gpus, machines=MachineManager(db).list())
        self.confirmation_page = ConfirmationPage(db)
        self.setPage(PAGE_DATASET, self.dataset_page)
        self.setPage(PAGE_CONFIG, self.config_page)
        self.setPage(PAGE_PARAMETERS, self.parameters_page)
        self.setPage(PAGE_CONFIRM, self.confirmation_page)

        self.setButtonText(QWizard.WizardButton.FinishButton, "Start now")
        self.button(QWizard.WizardButton.FinishButton).setToolTip("Start training now.")
        self.setOption(QWizard.WizardOption.HaveCustomButton1, True)
        self.setButtonText(QUEUE_BUTTON, "Add to queue")
        self.button(QUEUE_BUTTON).setToolTip("Run it after the runs already waiting in the queue.")
        self.setButtonLayout([QWizard.WizardButton.Stretch, QWizard.WizardButton.BackButton,
                              QWizard.WizardButton.NextButton, QUEUE_BUTTON,
                              QWizard.WizardButton.FinishButton, QWizard.WizardButton.CancelButton])
        self.customButtonClicked.connect(self._custom_button_clicked)
        self.currentIdChanged.connect(self._page_changed)
        self._page_changed(self.currentId())
        self.resize(760, 620)

    # -- finishing -------------------------------------------------------------------
    def _page_changed(self, page_id: int) -> None:
        self.button(QUEUE_BUTTON).setVisible(page_id == PAGE_CONFIRM)

    def _custom_button_clicked(self, which: int) -> None:
        if which == QUEUE_BUTTON.value:
            self.add_to_queue()

    def accept(self) -> None:
        """Start now (the Finish button): accepted only if the last page validates."""
        self._finish(START_NOW)

    def add_to_queue(self) -> None:
        """Add to queue: accepted only if the last page validates, like Start now."""
        self._finish(ADD_TO_QUEUE)

    def _finish(self, mode: str) -> None:
        self.start_mode = mode
        self.setResult(QDialog.DialogCode.Rejected.value)
        super().accept()                # QWizard validates the current page first
        if self.result() != QDialog.DialogCode.Accepted.value:
            self.start_mode = START_NOW  # refused: nothing was chosen

    def done(self, result: int) -> None:
        super().done(result)        # QWizard refuses an accept whose last page does not validate
        if not self.isVisible():
            self.dataset_page.listen(False)

    # -- values ----------------------------------------------------------------------
    def selected_dataset(self) -> dict | None:
        return self.dataset_page.selected_dataset()

    def select_dataset(self, dataset_id: int) -> bool:
        """Preselect a dataset (e.g. "Train on this dataset" from the Datasets page)."""
        return self.dataset_page.select_dataset(dataset_id)

    def get_config(self) -> dict:
        """Exactly the dict ``TrainingManager.start_training`` takes (``machine_id`` only
        for a run on another machine)."""
        params = self.parameters_page
        return {
            "name": params.name_edit.text().strip(),
            "dataset_id": self.dataset_page.selected_dataset_id(),
            "base_config": self.config_page.base_config(),
            "modifiers": self.config_page.modifiers(),
            "overrides": self.config_page.overrides(),
            "max_steps": params.max_steps.value(),
            "batch_size": params.batch_size.value(),
            "learning_rate": float(DEFAULTS["learning_rate"]),
            "device": params.device(),
            "val_every": params.val_every.value(),
            **params.extra_config(),  # "stop on NaN"
            **({"machine_id": params.machine_id()} if params.machine_id() is not None else {}),
        }

    def validated_config(self) -> dict | None:
        """The normalised config ``validate_config`` returned when the wizard was accepted."""
        return self.confirmation_page.validated
