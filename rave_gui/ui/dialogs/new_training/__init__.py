"""The "New Training" wizard: dataset, RAVE config, parameters, confirmation.

One module per page (``dataset_page``, ``config_page``, ``parameters_page``,
``confirmation_page``) and ``wizard`` for ``NewTrainingWizard``. Each page
prepares itself in ``initializePage`` and refuses to move on in
``validatePage`` (``QWizard.next()`` does not look at ``isComplete``, so both
say the same). The rules (overrides, warnings) live in
``backend.training_rules``, what the app knows about RAVE in
``backend.rave_catalogue``, the formatters in ``core.formatting``.
"""
from __future__ import annotations

from rave_gui.backend.rave_catalogue import (  # noqa: F401 (re-exported)
    BASE_CONFIGS, CONFIG_HELP, MAIN_MODIFIERS, MODIFIER_HELP, N_SIGNAL,
)
from rave_gui.backend.rave_cli import phase_1_duration  # noqa: F401 (re-exported)
from rave_gui.backend.training_rules import parse_overrides  # noqa: F401 (re-exported)
from rave_gui.core.formatting import format_channels, format_duration, format_lr  # noqa: F401
from rave_gui.ui.dialogs.new_training.config_page import ConfigSelectionPage
from rave_gui.ui.dialogs.new_training.confirmation_page import EXPERIMENT_FOLDER, ConfirmationPage
from rave_gui.ui.dialogs.new_training.dataset_page import EMPTY_DATASETS, DatasetSelectionPage
from rave_gui.ui.dialogs.new_training.parameters_page import TrainingParametersPage
from rave_gui.ui.dialogs.new_training.wizard import (
    ADD_TO_QUEUE, PAGE_CONFIG, PAGE_CONFIRM, PAGE_DATASET, PAGE_PARAMETERS, START_NOW, NewTrainingWizard,
)

__all__ = [
    "NewTrainingWizard", "DatasetSelectionPage", "ConfigSelectionPage", "TrainingParametersPage",
    "ConfirmationPage", "PAGE_DATASET", "PAGE_CONFIG", "PAGE_PARAMETERS", "PAGE_CONFIRM",
    "START_NOW", "ADD_TO_QUEUE", "EXPERIMENT_FOLDER", "EMPTY_DATASETS", "BASE_CONFIGS", "MAIN_MODIFIERS",
    "CONFIG_HELP", "MODIFIER_HELP", "N_SIGNAL", "phase_1_duration", "parse_overrides",
    "format_channels", "format_duration", "format_lr",
]
