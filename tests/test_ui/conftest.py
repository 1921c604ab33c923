"""Fixtures shared by the UI tests."""
from __future__ import annotations

import pytest

from rave_gui.backend.datasets import DatasetManager
from rave_gui.backend.training import TrainingManager


@pytest.fixture
def manager(db, tmp_path):
    return TrainingManager(db, runs_root=tmp_path / "runs")


@pytest.fixture
def dataset_id(db, fake_dataset):
    return DatasetManager(db).register(fake_dataset, name="voice")
